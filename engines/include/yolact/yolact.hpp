// Umbrella header of the yolact C++ runtime (CPU parts; add yolact/tensorrt.hpp for the engine).
#pragma once

#include "yolact/backend.hpp"
#include "yolact/draw.hpp"
#include "yolact/engine_info.hpp"
#include "yolact/json.hpp"
#include "yolact/postprocess.hpp"
#include "yolact/preprocess.hpp"
#include "yolact/results.hpp"
#include "yolact/rle.hpp"
#include "yolact/types.hpp"
