#include <sys/stat.h>

#include <cstring>

#include "harness.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FIXTURES_DIR [test-name-prefix ...]\n", argv[0]);
        return 2;
    }
    harness::fixtures() = argv[1];
    std::vector<std::string> prefixes(argv + 2, argv + argc);
    struct stat st;
    const bool have_fixtures = stat((harness::fixtures() + "/manifest.json").c_str(), &st) == 0;
    int run = 0, skipped = 0;
    for (const harness::Test& t : harness::registry()) {
        bool selected = prefixes.empty();
        for (const std::string& p : prefixes) selected = selected || std::strncmp(t.name, p.c_str(), p.size()) == 0;
        if (!selected) continue;
        const bool needs = std::strncmp(t.name, "fx_", 3) == 0;  // fixture-based tests
        if (needs && !have_fixtures) {
            ++skipped;
            continue;
        }
        const int before = harness::failures();
        try {
            t.fn();
        } catch (const std::exception& e) {
            harness::fail(__FILE__, __LINE__, std::string(t.name) + " threw: " + e.what());
        }
        std::fprintf(stderr, "%s %s\n", harness::failures() == before ? "[ ok ]" : "[FAIL]", t.name);
        ++run;
    }
    std::fprintf(stderr, "%d tests run, %d skipped (no fixtures), %d failed checks\n", run, skipped,
                 harness::failures());
    if (harness::failures()) return 1;
    if (run == 0 && skipped > 0) return 77;
    return 0;
}
