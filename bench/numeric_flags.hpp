// The benchmarks' command lines: "--name N" pairs, each setting one number. Thread affinity:
// none.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

namespace hawser::bench {

// Sets each named number from the command line; false (and a message) for an unknown name or
// a value that is not a number.
template <class Number>
bool read_numeric_flags(int argc, char** argv,
                        const std::vector<std::pair<std::string_view, Number*>>& flags) {
    for (int i = 1; i < argc; i += 2) {
        std::string_view name = argv[i];
        Number* target = nullptr;
        for (auto& [flag, where] : flags)
            if (flag == name) target = where;
        char* end = nullptr;
        auto value = i + 1 < argc ? std::strtoull(argv[i + 1], &end, 10) : 0;
        if (!target || i + 1 >= argc || end == argv[i + 1] || *end != '\0') {
            std::fprintf(stderr, "usage: %s", argv[0]);
            for (auto& [flag, _] : flags)
                std::fprintf(stderr, " [%.*s N]", int(flag.size()), flag.data());
            std::fprintf(stderr, "\n");
            return false;
        }
        *target = Number(value);
    }
    return true;
}

}  // namespace hawser::bench
