// DataFrame::decode and every reader must survive any bytes.
#include <cstdint>
#include <string_view>

#include "hawser/dataframe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    // Tight limits too, so that mutations reach every refusal of the header pre-scan.
    hawser::DecodeLimits tight;
    tight.max_depth = 4;
    tight.max_container = 16;
    tight.max_elements = 256;
    tight.max_decoded_bytes = 4096;
    (void)hawser::DataFrame::decode(bytes, tight);
    auto df = hawser::DataFrame::decode(bytes);
    if (!df) return 0;
    // Read every value with every reader; each either succeeds or returns a typed error.
    while (!df->at_end()) {
        (void)df->read_bool();
        (void)df->read_int();
        (void)df->read_uint();
        (void)df->read_double();
        (void)df->read_string();
        (void)df->read_bytes();
        (void)df->read_ints();
        (void)df->read_doubles();
        (void)df->read_map();
        (void)df->read_frame();
        if (!df->read_value()) break;
    }
    return 0;
}
