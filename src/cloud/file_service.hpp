// FileService: the cloud's per-user files (docs/cloud.md, "Files"): the upload stream cloud.put
// and the calls cloud.get, list, stat, mkdir, move, remove and usage.
//
// Where work runs: handlers start on the connection's IO thread (name checks); storage and file
// system calls run on the worker pool as counted jobs (Jobs); an upload's bytes reach the disk
// from the IO thread through receive_file, into the user's upload area, and are adopted into
// the blob store (BlobStore) once their hash matched. Changes to the tree are serialized by one
// lock held across a check and the write it allows: a quota check and the upload it admits, a
// blob's last reference and its deletion, a download's look-up and the open of its blob.
//
// Ownership: shared by the Cloud, the jobs and the uploads under way; the command handlers hold
// it weakly. close() drops the database handle once the Cloud's jobs have stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloud/blob_store.hpp"
#include "cloud/file_tree.hpp"
#include "cloud/jobs.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/commands.hpp"
#include "hawser/files.hpp"

namespace hawser::cloud::detail {

class FileService : public std::enable_shared_from_this<FileService> {
  public:
    // Whether the account still exists: an upload that finishes after its account was deleted
    // is not kept.
    using AccountExists = std::function<Result<bool>(std::uint64_t user)>;

    // Opens the tree and the blob store, and deletes cut uploads past their lifetime.
    static Result<std::shared_ptr<FileService>> open(zdb::Store& store, std::shared_ptr<Jobs> jobs,
                                                     const CloudOptions& options,
                                                     AccountExists account_exists);
    void add_commands(Commands& commands);
    // Every entry and cut upload of `user`, whose account is gone. Worker pool.
    Result<void> remove_all(std::uint64_t user);
    // After the Cloud's jobs stopped: lets go of the database.
    void close();

    std::uint64_t uploaded() const noexcept { return uploaded_.load(); }
    std::uint64_t downloaded() const noexcept { return downloaded_.load(); }

    FileService(std::shared_ptr<Jobs> jobs, const CloudOptions& options, BlobStore blobs,
                std::unique_ptr<FileTree> tree, AccountExists account_exists);

  private:
    using Reply = Responder<DataFrame>;
    struct Upload {
        std::uint64_t user = 0, ticket = 0, size = 0;
        std::size_t entries = 0;  // it adds: itself when new, and the directories above it
        std::string path, key;    // key: the part's name in the user's upload area
    };
    struct Reserved {
        std::uint64_t bytes = 0, entries = 0;
    };
    struct Reservation;
    // Where an upload goes, as the tree is now.
    struct Placement {
        std::optional<FileEntry> existing;  // the file it replaces
        std::vector<std::string> missing;   // directories to make above it
        FileUsage usage;                    // the user's, before it
        std::uint64_t freed = 0;            // bytes it replaces
        std::size_t adding = 0;             // entries it adds
    };

    void on_put(const Request& req, IncomingStream in);
    void admit(IncomingStream& in, Upload up);
    void received(Result<ReceivedFile> r, const Upload& up);
    void commit(ReceivedFile& stored, const Upload& up);
    void release(const Upload& up);
    // The checks an upload passes at its start and again at its end. Under tree_mu_.
    Result<Placement> place(const Upload& up) const;
    // What the user's uploads under way hold, but `except_ticket`'s. Under uploads_mu_.
    Reserved reserved_locked(std::uint64_t user, std::uint64_t except_ticket) const;
    // Whether `up` fits the quota and the entry limit, replacing `freed` bytes and adding
    // `adding` entries beside `others`.
    std::optional<Error> check_fits(const Upload& up, std::uint64_t freed, std::size_t adding,
                                    const FileUsage& usage, const Reserved& others) const;
    bool start_download(std::uint64_t user);
    void end_download(std::uint64_t user);
    bool uploading(std::uint64_t user, const std::string& file_name);

    // The calls: argument checks on the IO thread, the rest on the worker pool.
    void do_get(const Request& req, DataFrame arg, Reply reply);
    void do_list(const Request& req, DataFrame arg, Reply reply);
    void do_stat(const Request& req, DataFrame arg, Reply reply);
    void do_mkdir(const Request& req, DataFrame arg, Reply reply);
    void do_move(const Request& req, DataFrame arg, Reply reply);
    void do_remove(const Request& req, DataFrame arg, Reply reply);
    void do_usage(const Request& req, DataFrame arg, Reply reply);
    // Runs `job(user)` on the worker pool for the caller of `req`.
    template <class Job>
    void run(const Request& req, const Reply& reply, Job job);

    // Deletes the blob of `hash` unless an entry still names it. Under tree_mu_.
    void release_blob(const ContentHash& hash);
    // Deletes the entries, then the blobs no entry names any more. Under tree_mu_.
    Result<void> remove_entries(const std::vector<FileEntry>& entries);
    // Cut uploads past their lifetime: the user's, and everyone's at most hourly.
    void sweep(std::uint64_t user);
    // With the entries uploads under way will add. Under tree_mu_.
    Result<void> check_new_entries(std::uint64_t user, std::size_t adding);

    const std::shared_ptr<Jobs> jobs_;
    const CloudOptions options_;
    BlobStore blobs_;
    std::unique_ptr<FileTree> tree_;
    AccountExists account_exists_;

    std::mutex tree_mu_;     // serializes changes to the tree and the blobs (see above)
    std::mutex uploads_mu_;  // transfers under way; taken after tree_mu_, never before
    std::unordered_map<std::uint64_t, std::vector<Upload>> uploads_;  // by user
    std::unordered_map<std::uint64_t, std::size_t> downloads_;        // by user
    std::uint64_t next_ticket_ = 1;
    std::atomic<std::int64_t> last_full_sweep_{0};  // steady_clock ticks
    std::atomic<std::uint64_t> uploaded_{0}, downloaded_{0};
};

}  // namespace hawser::cloud::detail
