#include "yolact/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "yolact/types.hpp"

namespace yolact {
namespace json {
namespace {

const char* type_name(Value::Type t) {
    switch (t) {
        case Value::Type::Null: return "null";
        case Value::Type::Bool: return "a boolean";
        case Value::Type::Number: return "a number";
        case Value::Type::String: return "a string";
        case Value::Type::Array: return "an array";
        case Value::Type::Object: return "an object";
    }
    return "?";
}

[[noreturn]] void wrong_type(const char* what, const char* expected, Value::Type got) {
    throw Error(std::string(what) + " must be " + expected + ", got " + type_name(got));
}

constexpr int kMaxDepth = 64;

class Parser {
public:
    Parser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

    Value document() {
        skip_ws();
        Value v = value(0);
        skip_ws();
        if (p_ != s_.size()) fail("unexpected data after the document");
        return v;
    }

private:
    const std::string& s_;
    const std::string& source_;
    size_t p_ = 0;

    [[noreturn]] void fail(const std::string& msg) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p_ && i < s_.size(); ++i) {
            if (s_[i] == '\n') { ++line; col = 1; } else { ++col; }
        }
        throw Error(source_ + ": invalid JSON at line " + std::to_string(line) + " col " +
                    std::to_string(col) + ": " + msg);
    }
    void skip_ws() {
        while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
    }
    bool consume(const char* word) {
        size_t n = 0;
        while (word[n]) ++n;
        if (s_.compare(p_, n, word) == 0) { p_ += n; return true; }
        return false;
    }

    Value value(int depth) {
        if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
        if (p_ >= s_.size()) fail("unexpected end of input");
        const char c = s_[p_];
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') return Value::string(string());
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        if (consume("true")) return Value::boolean(true);
        if (consume("false")) return Value::boolean(false);
        if (consume("null")) return Value();
        fail(std::string("unexpected character '") + c + "'");
    }

    Value object(int depth) {
        Value v = Value::object();
        ++p_;  // {
        skip_ws();
        if (p_ < s_.size() && s_[p_] == '}') { ++p_; return v; }
        while (true) {
            skip_ws();
            if (p_ >= s_.size() || s_[p_] != '"') fail("expected a string key");
            std::string key = string();
            skip_ws();
            if (p_ >= s_.size() || s_[p_] != ':') fail("expected ':'");
            ++p_;
            skip_ws();
            v.set(key, value(depth + 1));
            skip_ws();
            if (p_ < s_.size() && s_[p_] == ',') { ++p_; continue; }
            if (p_ < s_.size() && s_[p_] == '}') { ++p_; return v; }
            fail("expected ',' or '}'");
        }
    }

    Value array(int depth) {
        Value v = Value::array();
        ++p_;  // [
        skip_ws();
        if (p_ < s_.size() && s_[p_] == ']') { ++p_; return v; }
        while (true) {
            skip_ws();
            v.push(value(depth + 1));
            skip_ws();
            if (p_ < s_.size() && s_[p_] == ',') { ++p_; continue; }
            if (p_ < s_.size() && s_[p_] == ']') { ++p_; return v; }
            fail("expected ',' or ']'");
        }
    }

    unsigned hex4() {
        if (p_ + 4 > s_.size()) fail("truncated \\u escape");
        unsigned u = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[p_++];
            u <<= 4;
            if (c >= '0' && c <= '9') u |= c - '0';
            else if (c >= 'a' && c <= 'f') u |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') u |= c - 'A' + 10;
            else fail("bad \\u escape");
        }
        return u;
    }

    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }

    std::string string() {
        ++p_;  // opening quote
        std::string out;
        while (true) {
            if (p_ >= s_.size()) fail("unterminated string");
            const char c = s_[p_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') { out.push_back(c); continue; }
            if (p_ >= s_.size()) fail("unterminated escape");
            const char e = s_[p_++];
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (!(p_ + 1 < s_.size() && s_[p_] == '\\' && s_[p_ + 1] == 'u')) fail("lone surrogate");
                        p_ += 2;
                        const unsigned lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("lone surrogate");
                    }
                    utf8(out, cp);
                    break;
                }
                default: fail(std::string("bad escape '\\") + e + "'");
            }
        }
    }

    Value number() {
        const size_t start = p_;
        if (s_[p_] == '-') ++p_;
        auto digits = [&]() {
            const size_t b = p_;
            while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
            return p_ - b;
        };
        if (p_ < s_.size() && s_[p_] == '0') {
            ++p_;
        } else if (digits() == 0) {
            fail("bad number");
        }
        if (p_ < s_.size() && s_[p_] == '.') {
            ++p_;
            if (digits() == 0) fail("bad number: digits expected after '.'");
        }
        if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
            ++p_;
            if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
            if (digits() == 0) fail("bad number: exponent digits expected");
        }
        double d = 0;
        const auto r = std::from_chars(s_.data() + start, s_.data() + p_, d);
        if (r.ec == std::errc::result_out_of_range) fail("number out of range");
        if (r.ec != std::errc() || r.ptr != s_.data() + p_) fail("bad number");
        return Value::number(d);
    }
};

}  // namespace

Value Value::boolean(bool b) { Value v; v.type_ = Type::Bool; v.bool_ = b; return v; }
Value Value::number(double d) { Value v; v.type_ = Type::Number; v.number_ = d; return v; }
Value Value::string(std::string s) { Value v; v.type_ = Type::String; v.string_ = std::move(s); return v; }
Value Value::array() { Value v; v.type_ = Type::Array; return v; }
Value Value::object() { Value v; v.type_ = Type::Object; return v; }

bool Value::as_bool(const char* what) const {
    if (type_ != Type::Bool) wrong_type(what, "a boolean", type_);
    return bool_;
}
double Value::as_number(const char* what) const {
    if (type_ != Type::Number) wrong_type(what, "a number", type_);
    return number_;
}
int64_t Value::as_int(const char* what) const {
    const double d = as_number(what);
    if (!(d == std::floor(d)) || std::fabs(d) > 9.0e15) {
        throw Error(std::string(what) + " must be an integer");
    }
    return static_cast<int64_t>(d);
}
const std::string& Value::as_string(const char* what) const {
    if (type_ != Type::String) wrong_type(what, "a string", type_);
    return string_;
}
const std::vector<Value>& Value::as_array(const char* what) const {
    if (type_ != Type::Array) wrong_type(what, "an array", type_);
    return array_;
}
const std::vector<std::pair<std::string, Value>>& Value::as_object(const char* what) const {
    if (type_ != Type::Object) wrong_type(what, "an object", type_);
    return object_;
}

const Value* Value::find(const std::string& key) const {
    if (type_ != Type::Object) return nullptr;
    for (const auto& kv : object_) {
        if (kv.first == key) return &kv.second;
    }
    return nullptr;
}

const Value* Value::find_path(const std::string& dotted) const {
    const Value* v = this;
    size_t start = 0;
    while (v) {
        const size_t dot = dotted.find('.', start);
        v = v->find(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) return v;
        start = dot + 1;
    }
    return nullptr;
}

Value& Value::push(Value v) {
    if (type_ == Type::Null) type_ = Type::Array;
    if (type_ != Type::Array) throw Error("json: push on a non-array");
    array_.push_back(std::move(v));
    return array_.back();
}

Value& Value::set(const std::string& key, Value v) {
    if (type_ == Type::Null) type_ = Type::Object;
    if (type_ != Type::Object) throw Error("json: set on a non-object");
    for (auto& kv : object_) {
        if (kv.first == key) { kv.second = std::move(v); return kv.second; }
    }
    object_.emplace_back(key, std::move(v));
    return object_.back().second;
}

void append_quoted(std::string& out, const std::string& s) {
    out.push_back('"');
    for (const char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

void append_number(std::string& out, double d) {
    if (!std::isfinite(d)) { out += "null"; return; }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
    out.append(buf, r.ptr);
}

static void dump_into(const Value& v, std::string& out) {
    switch (v.type()) {
        case Value::Type::Null: out += "null"; break;
        case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
        case Value::Type::Number: append_number(out, v.as_number()); break;
        case Value::Type::String: append_quoted(out, v.as_string()); break;
        case Value::Type::Array: {
            out.push_back('[');
            bool first = true;
            for (const Value& e : v.as_array()) {
                if (!first) out.push_back(',');
                first = false;
                dump_into(e, out);
            }
            out.push_back(']');
            break;
        }
        case Value::Type::Object: {
            out.push_back('{');
            bool first = true;
            for (const auto& kv : v.as_object()) {
                if (!first) out.push_back(',');
                first = false;
                append_quoted(out, kv.first);
                out.push_back(':');
                dump_into(kv.second, out);
            }
            out.push_back('}');
            break;
        }
    }
}

std::string Value::dump() const {
    std::string out;
    dump_into(*this, out);
    return out;
}

Value parse(const std::string& text, const std::string& source) {
    return Parser(text, source).document();
}

}  // namespace json
}  // namespace yolact
