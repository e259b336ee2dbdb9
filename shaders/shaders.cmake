# The Vulkan backend's shaders: every variant of every shaders/*.comp is compiled to SPIR-V
# by glslc at build time, and all of them are embedded into one C file (a uint32_t array
# per variant and a table of {name, code, bytes}, declared in worker/vulkan/vk_int.h), so a
# worker never looks for shader files at run time.
#
# A shader names its variants in lines of its own:
#     // variant: NAME [-DMACRO=VALUE ...]
# and is compiled once per line into NAME.spv with those macros. Included from the top
# CMakeLists.txt with GQ_GLSLC set; sets GQ_VK_EMBED (the generated C file).
file(GLOB GQ_VK_SHADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/shaders/*.comp)
file(GLOB GQ_VK_SHADER_INCLUDES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/shaders/*.glsl)
list(SORT GQ_VK_SHADERS)
set(GQ_VK_SPV_DIR ${CMAKE_BINARY_DIR}/shaders)
file(MAKE_DIRECTORY ${GQ_VK_SPV_DIR})
set(gq_vk_spvs)
foreach(src ${GQ_VK_SHADERS})
    # The variant list is read here, at configure time: an edited shader reconfigures.
    set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
    file(STRINGS ${src} gq_vk_lines REGEX "^// variant: ")
    if(NOT gq_vk_lines)
        message(FATAL_ERROR "${src}: no '// variant: NAME ...' line")
    endif()
    foreach(line ${gq_vk_lines})
        string(REGEX REPLACE "^// variant: *" "" spec "${line}")
        separate_arguments(spec UNIX_COMMAND "${spec}")
        list(POP_FRONT spec name)
        set(out ${GQ_VK_SPV_DIR}/${name}.spv)
        # Vulkan 1.1 SPIR-V (1.3): what every 1.1 driver takes. No -O: spirv-opt changes
        # nothing the drivers do not redo, and the float code must stay as written.
        add_custom_command(
            OUTPUT ${out}
            COMMAND ${GQ_GLSLC} --target-env=vulkan1.1 -fshader-stage=compute -Werror
                    -I${CMAKE_SOURCE_DIR}/shaders ${spec} -o ${out} ${src}
            DEPENDS ${src} ${GQ_VK_SHADER_INCLUDES}
            COMMENT "glslc ${name}"
            VERBATIM)
        list(APPEND gq_vk_spvs ${out})
    endforeach()
endforeach()
list(SORT gq_vk_spvs)
string(REPLACE ";" "|" gq_vk_spv_arg "${gq_vk_spvs}")
set(GQ_VK_EMBED ${CMAKE_BINARY_DIR}/shaders/gq_vk_spirv.c)
add_custom_command(
    OUTPUT ${GQ_VK_EMBED}
    COMMAND ${CMAKE_COMMAND} -DOUT=${GQ_VK_EMBED} -DSOURCES=${gq_vk_spv_arg}
            -P ${CMAKE_SOURCE_DIR}/shaders/embed_spv.cmake
    DEPENDS ${gq_vk_spvs} ${CMAKE_SOURCE_DIR}/shaders/embed_spv.cmake
    COMMENT "embedding shaders/*.comp SPIR-V"
    VERBATIM)
