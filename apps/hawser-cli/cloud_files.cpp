#include "cloud_files.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>

#include "cli_reply.hpp"
#include "hawser/cloud/cloud.hpp"

namespace hawser::app {

namespace {

namespace fs = std::filesystem;
using cloud::Cloud;

// A one-line bar on stderr, redrawn in place; only on a terminal.
class Progress {
  public:
    Progress(std::string label, std::uint64_t total)
        : label_(std::move(label)), total_(total), shown_(::isatty(2) != 0) {}
    void show(std::uint64_t done) {
        if (!shown_) return;
        std::lock_guard lock(mu_);
        int percent = total_ ? int(done * 100 / total_) : 100;
        int filled = percent * 30 / 100;
        std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %llu/%llu bytes", label_.c_str(), filled,
                     "##############################", 30 - filled, "", percent,
                     static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(total_));
    }
    ~Progress() {
        if (shown_) std::fputc('\n', stderr);
    }

  private:
    std::mutex mu_;
    std::string label_;
    std::uint64_t total_;
    bool shown_;
};

std::string when(std::int64_t ms) {
    std::time_t t = ms / 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%d %H:%M", &tm);
    return out;
}

Result<std::array<std::uint8_t, 32>> hash_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{Errc::invalid_argument, "cannot read " + path.string()};
    ContentHasher hasher;
    std::vector<char> block(1 << 20);
    while (in) {
        in.read(block.data(), std::streamsize(block.size()));
        hasher.update(std::string_view(block.data(), std::size_t(in.gcount())));
    }
    if (in.bad()) return Error{Errc::invalid_argument, "cannot read " + path.string()};
    return hasher.digest();
}

std::string hex(const std::array<std::uint8_t, 32>& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 15]);
    }
    return out;
}

int put(const Connection& conn, const FileCommand& c) {
    auto local = fs::path(c.first);
    std::error_code ec;
    auto size = fs::file_size(local, ec);
    if (ec)
        return call_error({Errc::invalid_argument, "cannot read " + c.first + ": " + ec.message()});
    auto remote = c.second.empty() ? local.filename().string() : c.second;
    // Hashed first: the server then resumes a cut upload of exactly this content, and the
    // sender does not hash again while sending.
    auto hash = hash_file(local);
    if (!hash) return call_error(hash.error());
    Progress progress("put " + remote, size);
    StreamOptions o;
    o.metadata << remote << hex(*hash);
    o.content_hash = *hash;
    o.on_progress = [&progress](std::uint64_t n) { progress.show(n); };
    // An upload cut earlier resumes from what the server kept of it.
    auto r = conn.send_file(Cloud::put_stream, local.string(), use_wait, o);
    if (!r) return call_error(r.error());
    progress.show(size);
    return exit_ok;
}

int get(const Connection& conn, const FileCommand& c) {
    auto target = download_target(c);
    DataFrame arg;
    arg << c.first;
    // The reply comes when the file is stored here: meanwhile the part's size is the progress.
    std::promise<Result<DataFrame>> done;
    auto reply = done.get_future();
    conn.call(
        Cloud::get_command, std::move(arg),
        [&done](Result<DataFrame> r) { done.set_value(std::move(r)); },
        CallOptions{.timeout = std::chrono::hours(24)});
    auto part = target;
    part += ".hawser-part";
    std::unique_ptr<Progress> progress;
    std::uint64_t size = 0;
    while (reply.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
        std::error_code ec;
        auto have = fs::file_size(part, ec);
        if (ec) continue;
        if (!progress) {
            DataFrame stat_arg;
            stat_arg << c.first;
            if (auto s =
                    call(conn, Cloud::stat_command, std::move(stat_arg), std::chrono::seconds(10)))
                size = number(s->get<Value>().as<Map>().at("size"));
            progress = std::make_unique<Progress>("get " + c.first, size);
        }
        progress->show(have);
    }
    auto r = reply.get();
    if (!r) return call_error(r.error());
    if (progress) progress->show(size);
    return exit_ok;
}

int list(const Connection& conn, const FileCommand& c, std::chrono::milliseconds timeout) {
    std::string after;
    for (;;) {
        DataFrame arg;
        arg << c.first << after;
        auto r = call(conn, Cloud::list_command, std::move(arg), timeout);
        if (!r) return call_error(r.error());
        auto page = r->get<Value>();
        bool more = r->get<bool>();
        for (auto& v : page.as<Array>()) {
            auto& e = v.as<Map>();
            bool dir = e.at("kind").as<std::string>() == "dir";
            std::printf("%c %12llu  %s  %s%s\n", dir ? 'd' : '-',
                        static_cast<unsigned long long>(number(e.at("size"))),
                        when(std::int64_t(number(e.at("modified_ms")))).c_str(),
                        e.at("name").as<std::string>().c_str(), dir ? "/" : "");
            after = e.at("name").as<std::string>();
        }
        if (!more) return exit_ok;
    }
}

}  // namespace

fs::path download_target(const FileCommand& c) {
    if (!c.second.empty()) return fs::absolute(c.second);
    return fs::absolute(fs::path(c.first).filename());
}

void prepare_download(Commands& commands, const fs::path& target) {
    commands.stream(std::string(Cloud::download_stream),
                    [target](Request, IncomingStream in) -> Task<void> {
                        // Stored under its local name whatever the server calls it; a part
                        // left by a cut download resumes.
                        (void)co_await receive_file(std::move(in), target.parent_path(),
                                                    target.filename().string());
                    });
}

int run_file_command(const Connection& conn, const FileCommand& c,
                     std::chrono::milliseconds timeout) {
    if (c.verb == "put") return put(conn, c);
    if (c.verb == "get") return get(conn, c);
    if (c.verb == "ls") return list(conn, c, timeout);
    DataFrame arg;
    std::string_view command;
    if (c.verb == "rm") {
        command = Cloud::remove_command;
        arg << c.first << c.recursive;
    } else if (c.verb == "mkdir") {
        command = Cloud::mkdir_command;
        arg << c.first;
    } else if (c.verb == "mv") {
        command = Cloud::move_command;
        arg << c.first << c.second;
    } else {
        command = Cloud::usage_command;
    }
    auto r = call(conn, command, std::move(arg), timeout);
    if (!r) return call_error(r.error());
    if (c.verb == "rm") {
        std::printf("removed %llu entries\n",
                    static_cast<unsigned long long>(r->get<std::uint64_t>()));
    } else if (c.verb == "usage") {
        auto u = r->get<Value>().as<Map>();
        std::printf("%llu of %llu bytes, %llu of %llu entries\n",
                    static_cast<unsigned long long>(number(u.at("bytes"))),
                    static_cast<unsigned long long>(number(u.at("quota_bytes"))),
                    static_cast<unsigned long long>(number(u.at("entries"))),
                    static_cast<unsigned long long>(number(u.at("max_entries"))));
    }
    return exit_ok;
}

int run_file_command_where_kept(const Connection& conn, const FileCommand& c,
                                std::chrono::milliseconds timeout, ClientOptions options,
                                const std::string& token) {
    auto at = call(conn, Cloud::files_at_command, {}, timeout);
    // A server from before cloud.files_at keeps files where it has them, if anywhere.
    if (!at && at.error().code != Errc::unknown_command) return call_error(at.error());
    if (!at) return run_file_command(conn, c, timeout);
    auto where = at->read_value();
    auto field = [&](const char* name) -> const Value* {
        if (!where || !where->is<Map>()) return nullptr;
        auto f = where->as<Map>().find(name);
        return f == where->as<Map>().end() ? nullptr : &f->second;
    };
    auto here = field("here");
    if (!here || !here->is<bool>())
        return call_error({Errc::bad_payload, "cloud.files_at answered without \"here\""});
    if (here->as<bool>()) return run_file_command(conn, c, timeout);
    auto endpoint = field("endpoint");
    auto key = field("public_key");
    if (!endpoint || !endpoint->is<std::string>() || !key || !key->is<std::string>())
        return call_error({Errc::bad_payload, "cloud.files_at named no endpoint and key"});
    options.endpoints = {endpoint->as<std::string>()};
    options.server_public_key = key->as<std::string>();
    options.trust_on_first_use = false;  // the key named by a node whose key was checked
    options.cluster = false;             // that node, not one routing picks
    options.websocket.enabled = false;   // a Hawser endpoint, as the nodes reach each other
    Client there(options);
    if (c.verb == "get") prepare_download(there.commands(), download_target(c));
    auto kept_at = [&](const Error& e) {
        return Error{e.code, "files are kept at " + options.endpoints[0] + ": " + e.message};
    };
    if (auto r = there.connect(); !r) return call_error(kept_at(r.error()));
    DataFrame arg;
    arg << token;
    auto resumed = there.connection().call(Cloud::resume_command, std::move(arg), use_wait,
                                           CallOptions{.timeout = timeout, .compress = false});
    if (!resumed) return call_error(kept_at(resumed.error()));
    return run_file_command(there.connection(), c, timeout);
}

}  // namespace hawser::app
