// A small JSON reader/writer for engine sidecar files and service responses (RFC 8259; objects keep
// their key order; nesting is limited so hostile input cannot exhaust the stack).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace yolact {
namespace json {

class Value {
public:
    enum class Type { Null, Bool, Number, String, Array, Object };

    Value() = default;
    static Value boolean(bool b);
    static Value number(double d);
    static Value string(std::string s);
    static Value array();
    static Value object();

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::Null; }
    bool is_bool() const { return type_ == Type::Bool; }
    bool is_number() const { return type_ == Type::Number; }
    bool is_string() const { return type_ == Type::String; }
    bool is_array() const { return type_ == Type::Array; }
    bool is_object() const { return type_ == Type::Object; }

    // Typed access; throws yolact::Error naming `what` when the type is wrong.
    bool as_bool(const char* what = "value") const;
    double as_number(const char* what = "value") const;
    int64_t as_int(const char* what = "value") const;  // must be integral and in range
    const std::string& as_string(const char* what = "value") const;
    const std::vector<Value>& as_array(const char* what = "value") const;
    const std::vector<std::pair<std::string, Value>>& as_object(const char* what = "value") const;

    // Object member or nullptr; `find_path("a.b.c")` walks nested objects.
    const Value* find(const std::string& key) const;
    const Value* find_path(const std::string& dotted) const;

    // Building.
    Value& push(Value v);                        // arrays
    Value& set(const std::string& key, Value v);  // objects (replaces an existing key)

    std::string dump() const;  // compact, numbers in shortest round-trip form

private:
    Type type_ = Type::Null;
    bool bool_ = false;
    double number_ = 0;
    std::string string_;
    std::vector<Value> array_;
    std::vector<std::pair<std::string, Value>> object_;
};

// Parses a whole document; throws yolact::Error "<source>: invalid JSON at line L col C: ...".
Value parse(const std::string& text, const std::string& source = "JSON");

// Appends `s` as a JSON string literal (quoted, escaped) to `out`.
void append_quoted(std::string& out, const std::string& s);
// Appends a number (integers without a fraction; NaN/inf as null).
void append_number(std::string& out, double d);

}  // namespace json
}  // namespace yolact
