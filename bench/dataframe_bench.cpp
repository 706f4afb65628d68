// DataFrame encode/decode against writing the same values with msgpack-cxx's packer directly.
#include <benchmark/benchmark.h>

#include "hawser/dataframe.hpp"

static hawser::DataFrame sample() {
    hawser::DataFrame df;
    df << std::int64_t(42) << "player-1234" << 3.14159 << true
       << std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8};
    return df;
}

static void BM_EncodeFrame(benchmark::State& state) {
    for (auto _ : state) {
        auto df = sample();
        benchmark::DoNotOptimize(df.bytes().data());
    }
}
BENCHMARK(BM_EncodeFrame);

static void BM_DecodeAndRead(benchmark::State& state) {
    auto bytes = sample().bytes();
    for (auto _ : state) {
        auto df = hawser::DataFrame::decode(bytes).value();
        benchmark::DoNotOptimize(df.read_int().value());
        benchmark::DoNotOptimize(df.read_string().value());
        benchmark::DoNotOptimize(df.read_double().value());
        benchmark::DoNotOptimize(df.read_bool().value());
        benchmark::DoNotOptimize(df.read_ints().value());
    }
}
BENCHMARK(BM_DecodeAndRead);
