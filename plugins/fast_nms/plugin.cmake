# YolactFastNMS: this folder's sources per instance (read by yd_add_plugin in the root CMakeLists.txt).
set(YD_PLUGIN_CPU_SOURCES fast_nms_cpu.cpp)
set(YD_PLUGIN_CUDA_SOURCES fast_nms_cuda.cu)
set(YD_PLUGIN_TRT_SOURCES fast_nms_plugin.cpp)
