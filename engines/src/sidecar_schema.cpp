// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> (std::function in its
// NFA states) when building with -O1 + sanitizers; the warning is off for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "yolact/sidecar_schema.hpp"

#include <cmath>
#include <regex>
#include <set>

#include "sidecar_schema_text.hpp"
#include "yolact/types.hpp"

namespace yolact {
namespace {

using nlohmann::json;

// The keywords of the schema file. A schema with any other is refused rather than half-checked.
const std::set<std::string> kKeywords = {
    "$schema", "$id", "title", "description", "$defs", "$ref", "type", "required", "properties",
    "items", "minItems", "maxItems", "enum", "const", "pattern", "minimum", "maximum", "minLength"};

void check_keywords(const json& schema, const std::string& where) {
    if (!schema.is_object()) throw Error("schema at " + where + " is not an object");
    for (const auto& [key, value] : schema.items()) {
        if (!kKeywords.count(key)) throw Error("schema keyword '" + key + "' at " + where + " is not supported by the C++ validator");
        if (key == "properties" || key == "$defs") {
            for (const auto& [name, sub] : value.items()) check_keywords(sub, where + "/" + key + "/" + name);
        } else if (key == "items") {
            check_keywords(value, where + "/items");
        }
    }
}

// jsonschema's notion: 1.0 is an integer, true is not.
bool is_integer(const json& v) {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d);
}

bool has_type(const json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    if (t == "number") return v.is_number();
    if (t == "integer") return is_integer(v);
    throw Error("unknown schema type '" + t + "'");
}

size_t code_points(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// Python's re.search (what the jsonschema package uses): a final '$' also matches before a trailing
// newline. std::regex (ECMAScript) does not, so that case is tried explicitly.
bool pattern_matches(const std::string& pattern, const std::string& s) {
    const std::regex re(pattern, std::regex::ECMAScript);
    if (std::regex_search(s, re)) return true;
    return !pattern.empty() && pattern.back() == '$' && !s.empty() && s.back() == '\n' &&
           std::regex_search(s.substr(0, s.size() - 1), re);
}

std::string short_dump(const json& v) {
    std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

class Validator {
public:
    explicit Validator(const json& root) : root_(root) { check_keywords(root, "#"); }

    void run(const json& schema, const json& v, const std::string& at, std::vector<std::string>& errors) const {
        const auto fail = [&](const std::string& msg) { errors.push_back((at.empty() ? "/" : at) + ": " + msg); };
        if (auto r = schema.find("$ref"); r != schema.end()) {
            run(resolve(r->get<std::string>()), v, at, errors);
        }
        if (auto t = schema.find("type"); t != schema.end()) {
            bool ok = false;
            std::string names;
            for (const json& name : t->is_array() ? *t : json::array({*t})) {
                ok = ok || has_type(v, name.get<std::string>());
                names += (names.empty() ? "" : " or ") + name.get<std::string>();
            }
            if (!ok) {
                fail(short_dump(v) + " is not of type " + names);
                return;  // the other keywords would only repeat it
            }
        }
        if (auto c = schema.find("const"); c != schema.end() && !(v == *c)) fail("must be " + c->dump());
        if (auto e = schema.find("enum"); e != schema.end()) {
            bool found = false;
            for (const json& option : *e) found = found || v == option;
            if (!found) fail(short_dump(v) + " is not one of " + e->dump());
        }
        if (v.is_number()) {
            const double d = v.get<double>();
            if (auto m = schema.find("minimum"); m != schema.end() && d < m->get<double>()) fail(short_dump(v) + " is less than " + m->dump());
            if (auto m = schema.find("maximum"); m != schema.end() && d > m->get<double>()) fail(short_dump(v) + " is greater than " + m->dump());
        }
        if (v.is_string()) {
            const std::string& s = v.get_ref<const std::string&>();
            if (auto m = schema.find("minLength"); m != schema.end() && code_points(s) < m->get<size_t>()) fail("string is too short");
            if (auto p = schema.find("pattern"); p != schema.end() && !pattern_matches(p->get<std::string>(), s)) {
                fail(short_dump(v) + " does not match " + p->dump());
            }
        }
        if (v.is_array()) {
            if (auto m = schema.find("minItems"); m != schema.end() && v.size() < m->get<size_t>()) fail("has fewer than " + m->dump() + " items");
            if (auto m = schema.find("maxItems"); m != schema.end() && v.size() > m->get<size_t>()) fail("has more than " + m->dump() + " items");
            if (auto items = schema.find("items"); items != schema.end()) {
                for (size_t i = 0; i < v.size(); ++i) run(*items, v[i], at + "/" + std::to_string(i), errors);
            }
        }
        if (v.is_object()) {
            if (auto req = schema.find("required"); req != schema.end()) {
                for (const json& k : *req) {
                    if (!v.contains(k.get<std::string>())) fail("'" + k.get<std::string>() + "' is a required property");
                }
            }
            if (auto props = schema.find("properties"); props != schema.end()) {
                for (const auto& [name, sub] : props->items()) {
                    if (auto it = v.find(name); it != v.end()) run(sub, *it, at + "/" + name, errors);
                }
            }
        }
    }

private:
    const json& resolve(const std::string& ref) const {
        const std::string prefix = "#/$defs/";
        if (ref.rfind(prefix, 0) != 0) throw Error("schema $ref '" + ref + "' is not supported (only #/$defs/NAME)");
        const json& defs = root_.at("$defs");
        auto it = defs.find(ref.substr(prefix.size()));
        if (it == defs.end()) throw Error("schema $ref '" + ref + "' is not defined");
        return *it;
    }
    const json& root_;
};

}  // namespace

const json& sidecar_schema() {
    static const json schema = [] {
        json s = json::parse(detail::kSidecarSchemaText);
        check_keywords(s, "#");
        return s;
    }();
    return schema;
}

std::vector<std::string> schema_errors(const json& schema, const json& document) {
    std::vector<std::string> errors;
    Validator(schema).run(schema, document, "", errors);
    return errors;
}

std::vector<std::string> sidecar_schema_errors(const json& document) {
    return schema_errors(sidecar_schema(), document);
}

json parse_json(const std::string& text, const std::string& source, int max_depth) {
    const json::parser_callback_t limit = [&](int depth, json::parse_event_t, json&) {
        if (depth > max_depth) throw Error(source + ": invalid JSON: nesting deeper than " + std::to_string(max_depth));
        return true;
    };
    try {
        return json::parse(text, limit);
    } catch (const json::exception& e) {
        throw Error(source + ": invalid JSON: " + e.what());
    }
}

}  // namespace yolact
