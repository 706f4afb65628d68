// ZDB reads fields of stored records in place (RecordView) and decodes matches: any bytes must
// give a field, nothing, or an error, never a read out of bounds.
#include <cstdint>
#include <string_view>

#include "zdb/index_key.hpp"
#include "zdb/record_view.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    hawser::zdb::RecordView view(bytes);
    for (const char* path : {"a", "b", "a.b", "level", "name.first"}) {
        auto field = view.find(hawser::zdb::split_path(path));
        if (!field) continue;
        (void)field->decode();
        (void)hawser::zdb::index_value_key(*field);
    }
    hawser::zdb::Field whole;
    if (hawser::zdb::read_field(bytes, whole)) (void)whole.decode();
    return 0;
}
