// Names and descriptions of error codes and close reasons, generated from the lists in
// hawser/error.hpp so that a new code cannot be left out of a table.
#include "hawser/error.hpp"

#include <array>

namespace hawser {

namespace {

struct Entry {
    std::uint16_t value;
    std::string_view name, what;
};

#define HAWSER_ENTRY(name, value, what) Entry{value, #name, what},
constexpr std::array errc_entries{HAWSER_ERRC_LIST(HAWSER_ENTRY)};
constexpr std::array close_entries{HAWSER_CLOSE_REASON_LIST(HAWSER_ENTRY)};
#undef HAWSER_ENTRY

// Codes are dense from 0: the value is the index. Checked here so a gap fails the build.
template <std::size_t N>
constexpr bool dense(const std::array<Entry, N>& entries) {
    for (std::size_t i = 0; i < N; ++i)
        if (entries[i].value != i) return false;
    return true;
}
static_assert(dense(errc_entries), "Errc values must be 0, 1, 2, ... in list order");
static_assert(dense(close_entries), "CloseReason values must be 0, 1, 2, ... in list order");

template <std::size_t N>
const Entry* lookup(const std::array<Entry, N>& entries, std::uint16_t value) {
    return value < N ? &entries[value] : nullptr;
}

}  // namespace

std::string_view to_string(Errc code) noexcept {
    auto e = lookup(errc_entries, std::uint16_t(code));
    return e ? e->name : "unknown_error";
}
std::string_view describe(Errc code) noexcept {
    auto e = lookup(errc_entries, std::uint16_t(code));
    return e ? e->what : "unknown error";
}
std::string_view to_string(CloseReason reason) noexcept {
    auto e = lookup(close_entries, std::uint16_t(reason));
    return e ? e->name : "unknown_reason";
}
std::string_view describe(CloseReason reason) noexcept {
    auto e = lookup(close_entries, std::uint16_t(reason));
    return e ? e->what : "unknown reason";
}

}  // namespace hawser
