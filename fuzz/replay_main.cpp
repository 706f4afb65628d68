// Stand-in for libFuzzer's main in ordinary builds: runs every file of the seed corpus, then
// a fixed number of mutations of each (bit flips, truncations, splices, random bytes) with a fixed
// seed, so a sanitizer build exercises the decoder on every test run, repeatably.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    std::vector<std::vector<std::uint8_t>> seeds;
    for (int i = 1; i < argc; ++i) {
        std::filesystem::path p(argv[i]);
        if (!std::filesystem::exists(p)) continue;
        auto add = [&](const std::filesystem::path& f) {
            std::ifstream in(f, std::ios::binary);
            seeds.emplace_back(std::istreambuf_iterator<char>(in),
                               std::istreambuf_iterator<char>());
        };
        if (std::filesystem::is_directory(p)) {
            for (auto& e : std::filesystem::directory_iterator(p))
                if (e.is_regular_file()) add(e.path());
        } else {
            add(p);
        }
    }
    seeds.emplace_back();
    std::mt19937 rng(20261125);
    std::size_t runs = 0;
    for (const auto& seed : seeds) {
        LLVMFuzzerTestOneInput(seed.data(), seed.size());
        ++runs;
        for (int m = 0; m < 2000; ++m) {
            auto input = seed;
            switch (rng() % 4) {
                case 0:
                    if (!input.empty())
                        input[rng() % input.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                    break;
                case 1:
                    input.resize(input.empty() ? 0 : rng() % input.size());
                    break;
                case 2: {
                    const auto& other = seeds[rng() % seeds.size()];
                    input.insert(input.begin() + (input.empty() ? 0 : rng() % input.size()),
                                 other.begin(), other.end());
                    break;
                }
                default:
                    input.resize(rng() % 64);
                    for (auto& b : input) b = static_cast<std::uint8_t>(rng());
            }
            LLVMFuzzerTestOneInput(input.data(), input.size());
            ++runs;
        }
    }
    std::printf("replayed %zu inputs from %zu seeds\n", runs, seeds.size());
    return 0;
}
