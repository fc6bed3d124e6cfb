// Helpers to read the Python reference fixtures written by make_fixtures.py.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "npy.hpp"
#include "yolact/types.hpp"

namespace fx {

inline std::string& dir() {
    static std::string d;
    return d;
}
inline std::string path(const std::string& name) { return dir() + "/" + name; }

inline std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw yolact::Error("cannot open " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream f(path);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(f, line)) lines.push_back(line);
    return lines;
}

inline const nlohmann::json& manifest() {
    static const nlohmann::json m = nlohmann::json::parse(read_text(path("manifest.json")));
    return m;
}

inline npy::Array array(const std::string& name) { return npy::load(path(name + ".npy")); }

inline yolact::Image image(int i) {
    const npy::Array a = array("img_" + std::to_string(i));
    yolact::Image im(static_cast<int>(a.shape[0]), static_cast<int>(a.shape[1]));
    im.data.assign(a.bytes.begin(), a.bytes.end());
    return im;
}

// One image's contract outputs as a batch of one.
inline yolact::BatchOutputs contract(int i) {
    const std::string p = "contract_" + std::to_string(i) + "_";
    const npy::Array masks = array(p + "masks");
    yolact::BatchOutputs o;
    o.resize(1, static_cast<int>(masks.shape[0]), static_cast<int>(masks.shape[1]), static_cast<int>(masks.shape[2]));
    o.num_detections = array(p + "num").vec<int32_t>();
    o.boxes = array(p + "boxes").vec<float>();
    o.scores = array(p + "scores").vec<float>();
    o.mask_scores = array(p + "mask_scores").vec<float>();
    o.classes = array(p + "classes").vec<int32_t>();
    o.masks = masks.vec<float>();
    return o;
}

inline int num_images() { return static_cast<int>(manifest().at("images").size()); }

}  // namespace fx
