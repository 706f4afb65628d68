// Commands: the table of handlers by name, filled before start and read-only after (frozen),
// so IO and worker threads read it without locks.
#include "hawser/commands.hpp"

#include <spdlog/spdlog.h>

#include "rpc/command_stats.hpp"
#include "rpc/reply_slot.hpp"
#include "wire/message.hpp"

namespace hawser {

namespace detail {

Kind kind_console() {
    return Kind::call_console;
}
Kind kind_dataframe() {
    return Kind::call_dataframe;
}
Kind kind_direct_console() {
    return Kind::direct_console;
}
Kind kind_direct_dataframe() {
    return Kind::direct_dataframe;
}

std::string describe_exception(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

void log_stream_handler_exception(std::string_view name, std::exception_ptr e) {
    spdlog::error("hawser: stream handler '{}' threw (error id {}): {}", name, new_error_id(),
                  describe_exception(e));
}

}  // namespace detail

Commands::Commands() = default;
Commands::~Commands() = default;

void Commands::add(std::string name, detail::Kind kind, CommandOptions options, Invoke invoke) {
    if (frozen_.load())
        throw Exception({Errc::invalid_argument, "commands are registered before start()"});
    if (name.empty() || name.size() > detail::max_command_name)
        throw Exception({Errc::invalid_argument, "command names are 1 to 255 bytes"});
    if (entries_.count(name))
        throw Exception({Errc::invalid_argument, "command '" + name + "' is already registered"});
    auto stats = std::make_shared<detail::CommandStatsCell>(io_threads_);
    std::string key = name;
    entries_.emplace(std::move(key),
                     Entry{std::move(name), kind, options, std::move(invoke), std::move(stats)});
}

void Commands::add_stream(std::string name, StreamHandler handler, CommandOptions options) {
    if (frozen_.load())
        throw Exception({Errc::invalid_argument, "stream handlers are registered before start()"});
    if (name.empty() || name.size() > detail::max_command_name)
        throw Exception({Errc::invalid_argument, "stream names are 1 to 255 bytes"});
    if (streams_.count(name))
        throw Exception({Errc::invalid_argument, "stream '" + name + "' is already registered"});
    std::string key = name;
    streams_.emplace(std::move(key),
                     StreamEntry{std::move(name), std::move(handler), options.public_access});
}

void Commands::require(std::function<bool(const Connection&)> allow) {
    if (frozen_.load()) throw Exception({Errc::invalid_argument, "the gate is set before start()"});
    if (gate_) throw Exception({Errc::invalid_argument, "the commands already have a gate"});
    gate_ = std::move(allow);
}

const Commands::StreamEntry* Commands::find_stream(std::string_view name) const {
    auto it = streams_.find(name);
    return it == streams_.end() ? nullptr : &it->second;
}

const Commands::Entry* Commands::find(std::string_view name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
}

void Commands::for_each(const std::function<void(const std::string&, const Entry&)>& f) const {
    for (const auto& [name, entry] : entries_) f(name, entry);
}

}  // namespace hawser
