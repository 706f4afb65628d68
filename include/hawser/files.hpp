// Files over big streams. The sending side is Connection::send_file (connection.hpp); the
// receiving side's stream handler hands its IncomingStream to receive_file, which stores it as
// `root/name`: the name is checked as a relative path (relative_path.hpp), the content is
// written to `root/name.hawser-part` and renamed to its name only once its hash matched, and a
// part left by an earlier attempt (a disconnect, a restart) is resumed from its size.
//
//     commands.stream("upload", [root](Request, IncomingStream in) -> Task<void> {
//         auto name = in.metadata().get_string("name")...;
//         auto stored = co_await receive_file(std::move(in), root, name);
//     });
//
// The sender learns the verdict (ok) once the file is stored, or, with hold_verdict, once the
// application has done its own work with it (a rename, a database record) and finishes the
// ReceivedFile's source.
//
// Writes go to the page cache from the connection's IO thread (pwrite); nothing is fsynced.
// Thread safety: any thread. The token's callback runs on the connection's IO thread, but when
// the receive is refused at once (a bad name, a file it cannot open, a closed connection, a
// full queue, too many resumes being checked): it then runs before start_receive_file
// returns, on the caller's thread.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "hawser/completion.hpp"
#include "hawser/relative_path.hpp"
#include "hawser/streams.hpp"

namespace hawser {

struct ReceiveFileOptions {
    PathLimits limits;          // for the name
    bool resume = true;         // false: a part left by an earlier attempt is discarded
    bool hold_verdict = false;  // true: the verdict waits for ReceivedFile::source
};

// A file receive_file stored.
struct ReceivedFile {
    std::uint64_t size = 0;
    std::array<std::uint8_t, 32> hash{};  // BLAKE2b-256 of the whole content, as verified
    // With hold_verdict, the stream whose verdict the sender still waits for: finish() it (an
    // error tells the sender the file was not kept) or drop it (ok). Otherwise empty.
    StreamSource source;
};

namespace detail {
void start_receive_file(IncomingStream stream, const std::filesystem::path& root,
                        const std::string& name, const ReceiveFileOptions& options,
                        std::function<void(Result<ReceivedFile>)> done);
}

// Completes with the file's size and hash once it is stored; errors: invalid_argument (the name),
// storage_error, and the stream's own (hash_mismatch, which also discards the part, cancelled,
// disconnected, ...). A name whose last segment ends in ".hawser-part" is refused.
template <class Token = UseTask>
auto receive_file(IncomingStream stream, std::filesystem::path root, std::string_view name,
                  Token&& token = {}, ReceiveFileOptions options = {}) {
    return detail::complete<ReceivedFile>(
        [stream = std::move(stream), root = std::move(root), name = std::string(name),
         options](std::function<void(Result<ReceivedFile>)> done) mutable {
            detail::start_receive_file(std::move(stream), root, name, options, std::move(done));
        },
        std::forward<Token>(token), "receive_file");
}

}  // namespace hawser
