// A tiny test harness: TEST(name) registers a function; CHECK/CHECK_EQ/CHECK_NEAR record failures.
// Run: <binary> <fixtures dir> [name-prefix ...]. Exit 0 all passed, 1 failures, 77 fixtures missing.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace harness {

struct Test {
    const char* name;
    std::function<void()> fn;
};

inline std::vector<Test>& registry() {
    static std::vector<Test> tests;
    return tests;
}
inline int& failures() {
    static int n = 0;
    return n;
}
inline std::string& fixtures() {
    static std::string dir;
    return dir;
}
inline std::string fixture(const std::string& name) { return fixtures() + "/" + name; }

struct Registrar {
    Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

inline void fail(const char* file, int line, const std::string& msg) {
    ++failures();
    std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, msg.c_str());
}

}  // namespace harness

#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)
#define TEST(name)                                                                   \
    static void HARNESS_CAT(test_, name)();                                          \
    static harness::Registrar HARNESS_CAT(reg_, name)(#name, HARNESS_CAT(test_, name)); \
    static void HARNESS_CAT(test_, name)()

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) harness::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
    } while (0)

#define CHECK_MSG(cond, msg)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            std::ostringstream _os;                                            \
            _os << "CHECK(" #cond "): " << msg;                                \
            harness::fail(__FILE__, __LINE__, _os.str());                      \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                                       \
    do {                                                                                     \
        const auto _a = (a);                                                                 \
        const auto _b = (b);                                                                 \
        if (!(_a == _b)) {                                                                   \
            std::ostringstream _os;                                                          \
            _os << #a " == " #b " failed: " << _a << " vs " << _b;                         \
            harness::fail(__FILE__, __LINE__, _os.str());                                    \
        }                                                                                    \
    } while (0)

#define CHECK_THROWS(expr, needle)                                                            \
    do {                                                                                      \
        bool _threw = false;                                                                  \
        try {                                                                                 \
            (void)(expr);                                                                     \
        } catch (const std::exception& _e) {                                                  \
            _threw = true;                                                                    \
            if (std::string(_e.what()).find(needle) == std::string::npos) {                  \
                harness::fail(__FILE__, __LINE__, std::string("message '") + _e.what() +      \
                                                      "' lacks '" + (needle) + "'");          \
            }                                                                                 \
        }                                                                                     \
        if (!_threw) harness::fail(__FILE__, __LINE__, "expected an exception: " #expr);      \
    } while (0)
