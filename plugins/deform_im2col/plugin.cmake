# YolactDeformIm2col: this folder's sources per instance (read by yd_add_plugin in the root CMakeLists.txt).
set(YD_PLUGIN_CPU_SOURCES deform_im2col_cpu.cpp)
set(YD_PLUGIN_CUDA_SOURCES deform_im2col_cuda.cu)
set(YD_PLUGIN_TRT_SOURCES deform_im2col_plugin.cpp)
