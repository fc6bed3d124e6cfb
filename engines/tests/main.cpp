// doctest runner: <binary> <fixtures dir> [doctest options, e.g. --test-case=fx_rle_*].
// Exit 77 (ctest: skipped) when only fixture tests (fx_*) were selected and there are no fixtures.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "fixtures.hpp"

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::fprintf(stderr, "usage: %s FIXTURES_DIR [doctest options]\n", argv[0]);
        return 2;
    }
    fx::dir() = argv[1];
    struct stat st;
    const bool have_fixtures = stat(fx::path("manifest.json").c_str(), &st) == 0;
    doctest::Context context;
    context.applyCommandLine(argc - 1, argv + 1);
    if (!have_fixtures) {
        bool only_fixture_tests = false;
        for (int i = 2; i < argc; ++i) {
            if (std::strncmp(argv[i], "--test-case=", 12) == 0) {
                only_fixture_tests = true;
                std::string list = argv[i] + 12;
                for (size_t p = 0; p <= list.size();) {
                    const size_t q = std::min(list.find(',', p), list.size());
                    only_fixture_tests = only_fixture_tests && list.compare(p, 3, "fx_") == 0;
                    p = q + 1;
                }
            }
        }
        if (only_fixture_tests) {
            std::fprintf(stderr, "no fixtures in %s: fixture tests skipped\n", argv[1]);
            return 77;
        }
        context.addFilter("test-case-exclude", "fx_*");
    }
    return context.run();
}
