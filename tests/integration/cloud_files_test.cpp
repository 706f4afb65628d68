// The cloud's per-user files end to end over loopback: uploads and downloads over big streams,
// the tree calls, content stored once by hash, quotas, odd names, other users' files, resumes
// after a cut connection, and the sweep of cut uploads.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>

#include <atomic>
#include <filesystem>

#include "cloud/blob_store.hpp"
#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;
namespace fs = std::filesystem;

namespace {

// A logged-in user whose downloads land under `into`, named by their path.
struct FileUser {
    std::unique_ptr<Client> client;
    std::uint64_t id = 0;
    fs::path into;
    const Connection connection() const { return client->connection(); }
};

std::unique_ptr<Client> downloading_client(const CloudServer& s, const fs::path& into) {
    return s.client([into](Commands& c) {
        c.stream(std::string(Cloud::download_stream),
                 [into](Request, IncomingStream in) -> Task<void> {
                     auto metadata = in.metadata();
                     auto path = metadata.get<std::string>();
                     (void)co_await receive_file(std::move(in), into, path);
                 });
    });
}

FileUser member(const CloudServer& s, const std::string& name, bool registered = false) {
    FileUser m;
    m.into = fs::path(s.dir) / ("downloads-" + name);
    m.client = downloading_client(s, m.into);
    if (!registered) register_user(*m.client, name, password);
    m.id = login(*m.client, name, password).value().user;
    return m;
}

cloud::CloudOptions& with_files(cloud::CloudOptions& o, const std::string& dir) {
    o.files_dir = dir + "/files";
    return o;
}

CloudServer files_server(const std::string& name,
                         const std::function<void(cloud::CloudOptions&)>& tweak = {}) {
    auto dir = scratch(name);
    return CloudServer(dir, [&](cloud::CloudOptions& o) {
        with_files(o, dir);
        if (tweak) tweak(o);
    });
}

Result<void> upload(const FileUser& m, const std::string& path, const std::string& content) {
    StreamOptions o;
    o.metadata << path;
    return m.connection().send_stream(Cloud::put_stream, content, use_wait, o);
}

Errc upload_code(const FileUser& m, const std::string& path, const std::string& content) {
    auto r = upload(m, path, content);
    return r ? Errc::ok : r.error().code;
}

// Downloads `path` and returns its content as it arrived.
Result<std::string> download(const FileUser& m, const std::string& path) {
    DataFrame arg;
    arg << path;
    auto r = m.connection().call(Cloud::get_command, arg, use_wait,
                                 CallOptions{.timeout = std::chrono::minutes(2)});
    if (!r) return r.error();
    return read_file(m.into / path);
}

Result<Map> entry(const FileUser& m, std::string_view command, const std::string& path) {
    DataFrame arg;
    arg << path;
    auto r = call(*m.client, command, arg);
    if (!r) return r.error();
    return r->get<Value>().as<Map>();
}

// The names directly under `dir`.
std::vector<std::string> listed_names(const FileUser& m, const std::string& dir) {
    DataFrame arg;
    arg << dir;
    auto r = call(*m.client, Cloud::list_command, arg).value();
    std::vector<std::string> out;
    auto list = r.get<Value>();
    for (auto& v : list.as<Array>()) out.push_back(v.as<Map>().at("name").as<std::string>());
    EXPECT_FALSE(r.get<bool>());  // no more pages
    return out;
}

Errc code(const Result<Map>& r) {
    return r ? Errc::ok : r.error().code;
}

DataFrame two(const std::string& a, const std::string& b) {
    DataFrame df;
    df << a << b;
    return df;
}

std::size_t files_under(const fs::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec))
        if (it->is_regular_file()) ++n;
    return n;
}

std::string hex_of(const std::string& content) {
    ContentHasher h;
    h.update(content);
    return cloud::detail::to_hex(h.digest());
}

// Waits until no receiver holds the cut upload's part (its connection's close has been seen),
// and returns its path.
fs::path released_part(const CloudServer& s, std::uint64_t user) {
    auto dir = fs::path(s.dir) / "files" / "uploads" / std::to_string(user);
    fs::path part;
    EXPECT_TRUE(eventually([&] {
        std::error_code ec;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec))
            if (it->path().string().ends_with(".hawser-part")) part = it->path();
        if (part.empty()) return false;
        int fd = ::open(part.c_str(), O_RDONLY);
        bool free = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
        if (fd >= 0) ::close(fd);
        return free;
    }));
    return part;
}

// Starts an upload of `content` to `path`, writes `sent` bytes of it and cuts the connection.
void cut_upload(const CloudServer& s, const std::string& name, const std::string& path,
                const std::string& content, std::size_t sent) {
    auto m = member(s, name, true);
    StreamOptions o;
    o.metadata << path;
    o.size = content.size();
    auto sink = m.connection().open_stream(Cloud::put_stream, use_wait, o).value();
    for (std::size_t at = 0; at < sent; at += 256 * 1024)
        ASSERT_TRUE(
            sink.write(content.substr(at, std::min<std::size_t>(256 * 1024, sent - at)), use_wait));
    auto dir = fs::path(s.dir) / "files" / "uploads" / std::to_string(m.id);
    ASSERT_TRUE(eventually([&] {
        std::error_code ec;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec))
            if (it->path().string().ends_with(".hawser-part") && it->file_size() >= sent / 2)
                return true;
        return false;
    }));
    m.client->close();
}

}  // namespace

TEST(CloudFiles, UploadListDownloadAndRemove) {
    auto s = files_server("files_basic");
    auto ann = member(s, "ann");
    auto content = random_bytes(1'000'003, 1);
    ASSERT_TRUE(upload(ann, "docs/report.bin", content));
    auto stat = entry(ann, Cloud::stat_command, "docs/report.bin").value();
    EXPECT_EQ(stat.at("kind").as<std::string>(), "file");
    EXPECT_EQ(number(stat.at("size")), content.size());
    EXPECT_EQ(stat.at("hash").as<std::string>(), hex_of(content));
    EXPECT_EQ(listed_names(ann, ""), std::vector<std::string>{"docs"});  // made on the way
    EXPECT_EQ(listed_names(ann, "docs"), std::vector<std::string>{"report.bin"});
    EXPECT_EQ(download(ann, "docs/report.bin").value(), content);
    EXPECT_EQ(s.cloud->stats().files_uploaded, 1u);
    EXPECT_EQ(s.cloud->stats().files_downloaded, 1u);

    auto usage = call(*ann.client, Cloud::usage_command, {}).value().get<Value>().as<Map>();
    EXPECT_EQ(number(usage.at("bytes")), content.size());
    EXPECT_EQ(number(usage.at("entries")), 2u);

    DataFrame plain;
    plain << "docs";
    EXPECT_EQ(code_of(call(*ann.client, Cloud::remove_command, plain)), Errc::invalid_argument);
    DataFrame recursive;
    recursive << "docs" << true;
    EXPECT_EQ(call(*ann.client, Cloud::remove_command, recursive).value().get<std::uint64_t>(), 2u);
    EXPECT_TRUE(listed_names(ann, "").empty());
    EXPECT_EQ(files_under(fs::path(s.dir) / "files" / "blobs"), 0u);
    EXPECT_EQ(code(entry(ann, Cloud::stat_command, "docs/report.bin")), Errc::not_found);
}

TEST(CloudFiles, IdenticalContentIsStoredOnceAndFreedWithItsLastName) {
    auto s = files_server("files_shared");
    auto ann = member(s, "ann");
    auto bob = member(s, "bob");
    auto content = random_bytes(200'000, 2);
    ASSERT_TRUE(upload(ann, "a.bin", content));
    ASSERT_TRUE(upload(ann, "copy/a.bin", content));
    ASSERT_TRUE(upload(bob, "mine.bin", content));
    auto blobs = fs::path(s.dir) / "files" / "blobs";
    EXPECT_EQ(files_under(blobs), 1u);
    DataFrame rm;
    rm << "a.bin";
    ASSERT_TRUE(call(*ann.client, Cloud::remove_command, rm));
    DataFrame rm_dir;
    rm_dir << "copy" << true;
    ASSERT_TRUE(call(*ann.client, Cloud::remove_command, rm_dir));
    EXPECT_EQ(files_under(blobs), 1u);  // bob still names it
    EXPECT_EQ(download(bob, "mine.bin").value(), content);
    // New content under an old name frees the old content.
    auto other = random_bytes(1000, 3);
    ASSERT_TRUE(upload(bob, "mine.bin", other));
    EXPECT_EQ(files_under(blobs), 1u);
    EXPECT_EQ(download(bob, "mine.bin").value(), other);
}

TEST(CloudFiles, OddNamesAreRefusedAndNothingIsWritten) {
    auto s = files_server("files_names");
    auto ann = member(s, "ann");
    std::vector<std::string> bad{"../x",
                                 "/etc/passwd",
                                 "a/../../b",
                                 std::string("a\0b", 3),
                                 std::string(10'000, 'n'),
                                 "a/\xE2\x80\xAE"
                                 "txt.exe",  // right-to-left override
                                 "a\xC0\xAF"
                                 "b",  // overlong '/'
                                 "a\xEF\xBC\x8F"
                                 "b",  // fullwidth '/'
                                 "C:\\windows",
                                 "x.hawser-part"};
    for (auto& name : bad) {
        // .hawser-part is a fine name in the tree: the upload area is named apart from it.
        auto expected = name == "x.hawser-part" ? Errc::ok : Errc::invalid_argument;
        EXPECT_EQ(upload_code(ann, name, "content"), expected) << name;
        if (expected == Errc::ok) continue;
        EXPECT_EQ(code(entry(ann, Cloud::mkdir_command, name)), Errc::invalid_argument) << name;
        EXPECT_EQ(code(entry(ann, Cloud::stat_command, name)), Errc::invalid_argument) << name;
        EXPECT_EQ(code_of(call(*ann.client, Cloud::move_command, two("x.hawser-part", name))),
                  Errc::invalid_argument)
            << name;
    }
    EXPECT_EQ(listed_names(ann, ""), std::vector<std::string>{"x.hawser-part"});
    EXPECT_FALSE(fs::exists(fs::path(s.dir) / "x"));
    EXPECT_FALSE(fs::exists(fs::path(s.dir) / "files" / "x"));
}

TEST(CloudFiles, QuotaAndEntryLimitsHoldUploadsUnderWayIncluded) {
    auto s = files_server("files_quota", [](cloud::CloudOptions& o) {
        o.quota_bytes = 1000;
        o.max_entries_per_user = 4;
    });
    auto ann = member(s, "ann");
    ASSERT_TRUE(upload(ann, "one", random_bytes(600, 4)));
    EXPECT_EQ(upload_code(ann, "two", random_bytes(600, 5)), Errc::limit_exceeded);
    ASSERT_TRUE(upload(ann, "one", random_bytes(900, 6)));  // the old content is freed
    // An upload under way holds its bytes: the next one counts them.
    StreamOptions o;
    o.metadata << "held";
    o.size = 50;
    auto sink = ann.connection().open_stream(Cloud::put_stream, use_wait, o).value();
    EXPECT_EQ(upload_code(ann, "more", random_bytes(80, 7)), Errc::limit_exceeded);
    ASSERT_TRUE(sink.write(random_bytes(50, 8), use_wait));
    ASSERT_TRUE(sink.finish(use_wait));
    EXPECT_EQ(upload_code(ann, "more", random_bytes(60, 9)), Errc::limit_exceeded);
    EXPECT_EQ(upload_code(ann, "more", random_bytes(50, 9)), Errc::ok);
    // Four entries: one, held, more, and one directory.
    EXPECT_EQ(code(entry(ann, Cloud::mkdir_command, "d")), Errc::ok);
    EXPECT_EQ(code(entry(ann, Cloud::mkdir_command, "e")), Errc::limit_exceeded);
    EXPECT_EQ(upload_code(ann, "d/f", ""), Errc::limit_exceeded);
    auto usage = call(*ann.client, Cloud::usage_command, {}).value().get<Value>().as<Map>();
    EXPECT_EQ(number(usage.at("bytes")), 1000u);
    EXPECT_EQ(number(usage.at("entries")), 4u);
    EXPECT_EQ(number(usage.at("quota_bytes")), 1000u);
}

TEST(CloudFiles, TheTreeIsCheckedAgainWhenAnUploadEnds) {
    auto s = files_server("files_recheck", [](cloud::CloudOptions& o) { o.quota_bytes = 1000; });
    auto ann = member(s, "ann");
    ASSERT_TRUE(upload(ann, "p", random_bytes(600, 14)));
    // Admitted as a replacement of p's 600 bytes...
    StreamOptions o;
    o.metadata << "p";
    o.size = 600;
    auto sink = ann.connection().open_stream(Cloud::put_stream, use_wait, o).value();
    // ...one upload per path at once...
    EXPECT_EQ(upload_code(ann, "p", random_bytes(600, 15)), Errc::too_many_pending);
    // ...but p moves away meanwhile: kept, it would hold 1200 bytes.
    ASSERT_TRUE(call(*ann.client, Cloud::move_command, two("p", "q")));
    ASSERT_TRUE(sink.write(random_bytes(600, 16), use_wait));
    auto finished = sink.finish(use_wait);
    ASSERT_FALSE(finished);
    EXPECT_EQ(finished.error().code, Errc::limit_exceeded);
    EXPECT_EQ(listed_names(ann, ""), std::vector<std::string>{"q"});
    auto usage = call(*ann.client, Cloud::usage_command, {}).value().get<Value>().as<Map>();
    EXPECT_EQ(number(usage.at("bytes")), 600u);
}

TEST(CloudFiles, MovesKeepPathsWithinTheLimits) {
    auto s = files_server("files_deep");
    auto ann = member(s, "ann");
    std::string deep = "d";
    for (int i = 1; i < 31; ++i) deep += "/d";  // 31 deep
    ASSERT_EQ(code(entry(ann, Cloud::mkdir_command, deep)), Errc::ok);
    ASSERT_EQ(code(entry(ann, Cloud::mkdir_command, "a/b")), Errc::ok);
    // a fits at depth 32, a/b would be 33.
    EXPECT_EQ(code_of(call(*ann.client, Cloud::move_command, two("a", deep + "/a"))),
              Errc::invalid_argument);
    EXPECT_EQ(listed_names(ann, "a"), std::vector<std::string>{"b"});  // nothing moved
    ASSERT_TRUE(call(*ann.client, Cloud::move_command, two("a/b", deep + "/b")));
}

TEST(CloudFiles, DownloadsAtOnceAreBoundedPerUser) {
    auto s = files_server("files_downloads",
                          [](cloud::CloudOptions& o) { o.max_transfers_per_user = 2; });
    auto ann = member(s, "ann");
    ASSERT_TRUE(upload(ann, "f", "content"));
    // A client that neither accepts nor rejects what it is sent holds its downloads open.
    std::mutex mu;
    std::vector<IncomingStream> held;
    auto slow = s.client([&](Commands& c) {
        c.stream(std::string(Cloud::download_stream), [&](const Request&, IncomingStream in) {
            std::lock_guard lock(mu);
            held.push_back(std::move(in));
        });
    });
    ASSERT_TRUE(login(*slow, "ann", password));
    DataFrame arg;
    arg << "f";
    std::vector<std::shared_ptr<Slot<Errc>>> replies;
    for (int i = 0; i < 2; ++i) {
        replies.push_back(std::make_shared<Slot<Errc>>());
        slow->connection().call(Cloud::get_command, arg, [r = replies.back()](Result<DataFrame> d) {
            r->set(d ? Errc::ok : d.error().code);
        });
    }
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mu);
        return held.size() == 2;
    }));
    EXPECT_EQ(download(ann, "f").error().code, Errc::too_many_pending);
    {
        std::lock_guard lock(mu);
        held.clear();  // rejected
    }
    for (auto& r : replies) EXPECT_EQ(r->get(), Errc::not_allowed);
    EXPECT_EQ(download(ann, "f").value(), "content");
}

TEST(CloudFiles, AnotherUsersFilesAreOutOfReach) {
    auto s = files_server("files_other");
    auto ann = member(s, "ann");
    auto bob = member(s, "bob");
    auto secret = random_bytes(5000, 10);
    ASSERT_TRUE(upload(ann, "secret.bin", secret));
    EXPECT_EQ(download(bob, "secret.bin").error().code, Errc::not_found);
    EXPECT_EQ(code(entry(bob, Cloud::stat_command, "secret.bin")), Errc::not_found);
    EXPECT_EQ(code(entry(bob, Cloud::remove_command, "secret.bin")), Errc::not_found);
    EXPECT_EQ(code_of(call(*bob.client, Cloud::move_command, two("secret.bin", "got.bin"))),
              Errc::not_found);
    EXPECT_TRUE(listed_names(bob, "").empty());
    ASSERT_TRUE(upload(bob, "secret.bin", "bob's own"));
    EXPECT_EQ(download(ann, "secret.bin").value(), secret);
    EXPECT_EQ(download(bob, "secret.bin").value(), "bob's own");
    // Without a login nothing passes: the stream is refused like a call.
    auto stranger = downloading_client(s, fs::path(s.dir) / "stranger");
    StreamOptions o;
    o.metadata << "x";
    EXPECT_EQ(stranger->connection().send_stream(Cloud::put_stream, "x", use_wait, o).error().code,
              Errc::unauthenticated);
    DataFrame arg;
    arg << "secret.bin";
    EXPECT_EQ(code_of(call(*stranger, Cloud::get_command, arg)), Errc::unauthenticated);
}

TEST(CloudFiles, DirectoriesMoveWithEverythingInThem) {
    auto s = files_server("files_tree");
    auto ann = member(s, "ann");
    ASSERT_EQ(code(entry(ann, Cloud::mkdir_command, "a/b/c")), Errc::ok);
    ASSERT_TRUE(upload(ann, "a/b/c/f.txt", "hello"));
    EXPECT_EQ(code(entry(ann, Cloud::mkdir_command, "a/b")), Errc::ok);  // already there
    auto moved = call(*ann.client, Cloud::move_command, two("a", "x/y"));
    ASSERT_TRUE(moved) << moved.error().message;
    EXPECT_EQ(moved->get<Value>().as<Map>().at("path").as<std::string>(), "x/y");
    EXPECT_EQ(download(ann, "x/y/b/c/f.txt").value(), "hello");
    EXPECT_EQ(code(entry(ann, Cloud::stat_command, "a")), Errc::not_found);
    EXPECT_EQ(code(entry(ann, Cloud::stat_command, "a/b/c/f.txt")), Errc::not_found);
    EXPECT_EQ(listed_names(ann, ""), std::vector<std::string>{"x"});
    EXPECT_EQ(code_of(call(*ann.client, Cloud::move_command, two("x", "x/y/z"))),
              Errc::invalid_argument);
    // Files and directories do not stand in for each other.
    ASSERT_TRUE(upload(ann, "f", "file"));
    EXPECT_EQ(code(entry(ann, Cloud::mkdir_command, "f")), Errc::already_exists);
    EXPECT_EQ(code(entry(ann, Cloud::mkdir_command, "f/g")), Errc::invalid_argument);
    EXPECT_EQ(upload_code(ann, "f/g", "under a file"), Errc::invalid_argument);
    EXPECT_EQ(upload_code(ann, "x", "over a directory"), Errc::already_exists);
    EXPECT_EQ(code_of(call(*ann.client, Cloud::move_command, two("f", "x"))), Errc::already_exists);
    DataFrame list_file;
    list_file << "f";
    EXPECT_EQ(code_of(call(*ann.client, Cloud::list_command, list_file)), Errc::invalid_argument);
    EXPECT_EQ(download(ann, "x").error().code, Errc::invalid_argument);
}

TEST(CloudFiles, AnUploadCutByADisconnectResumesWhereItStopped) {
    auto s = files_server("files_resume");
    auto content = random_bytes(6u << 20, 11);
    register_user(*s.client(), "ann", password);
    cut_upload(s, "ann", "big.bin", content, 3u << 20);
    auto ann = member(s, "ann", true);
    auto part = released_part(s, ann.id);
    auto have = fs::file_size(part);
    ASSERT_GT(have, 0u);
    ASSERT_LT(have, content.size());
    std::atomic<std::uint64_t> first_progress{0};
    StreamOptions o;
    o.metadata << "big.bin";
    o.on_progress = [&](std::uint64_t n) {
        std::uint64_t zero = 0;
        first_progress.compare_exchange_strong(zero, n);
    };
    auto r = ann.connection().send_stream(Cloud::put_stream, content, use_wait, o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_GE(first_progress.load(), have);  // it started where the part ended
    EXPECT_EQ(download(ann, "big.bin").value(), content);
    EXPECT_EQ(files_under(fs::path(s.dir) / "files" / "uploads"), 0u);
}

TEST(CloudFiles, CutUploadsAreSweptOnceTheirLifetimeIsOver) {
    auto s = files_server("files_sweep");
    auto content = random_bytes(2u << 20, 12);
    register_user(*s.client(), "ann", password);
    cut_upload(s, "ann", "old.bin", content, 1u << 20);
    auto ann = member(s, "ann", true);
    auto part = released_part(s, ann.id);
    // A day and more without a resume: the next upload of that user sweeps it (the server may
    // still be letting go of the cut upload when the first one starts).
    fs::last_write_time(part, fs::file_time_type::clock::now() - std::chrono::hours(25));
    EXPECT_TRUE(eventually([&] {
        EXPECT_TRUE(upload(ann, "new.bin", "new"));
        return !fs::exists(part);
    }));
    // A recent one stays for a resume, and a restart sweeps what is old.
    cut_upload(s, "ann", "old.bin", content, 1u << 20);
    part = released_part(s, ann.id);
    ASSERT_TRUE(upload(ann, "newer.bin", "newer"));
    EXPECT_TRUE(fs::exists(part));
    fs::last_write_time(part, fs::file_time_type::clock::now() - std::chrono::hours(25));
    auto dir = s.dir;
    s.server.reset();
    s.cloud.reset();
    s.store.reset();
    CloudServer again(dir, [&](cloud::CloudOptions& o) { with_files(o, dir); });
    EXPECT_FALSE(fs::exists(part));
}

TEST(CloudFiles, CutUploadsKeptToResumeCountAgainstTheQuota) {
    auto s =
        files_server("files_cut_quota", [](cloud::CloudOptions& o) { o.quota_bytes = 12u << 20; });
    register_user(*s.client(), "ann", password);
    cut_upload(s, "ann", "a.bin", random_bytes(6u << 20, 13), 3u << 20);
    auto ann = member(s, "ann", true);
    auto part = released_part(s, ann.id);
    // 4 MiB of files leave 8 for the part of about 3: it stays for a resume.
    ASSERT_TRUE(upload(ann, "b.bin", random_bytes(4u << 20, 14)));
    EXPECT_TRUE(fs::exists(part));
    // 11 MiB of files leave 1: the part goes as the upload is admitted.
    ASSERT_TRUE(upload(ann, "c.bin", random_bytes(7u << 20, 15)));
    EXPECT_FALSE(fs::exists(part));
    EXPECT_EQ(files_under(fs::path(s.dir) / "files" / "uploads"), 0u);
}

TEST(CloudFiles, OneServerOwnsAFilesDirectory) {
    auto s = files_server("files_owner");
    auto other = scratch("files_owner_other");
    EXPECT_THROW(
        CloudServer second(other, [&](cloud::CloudOptions& o) { o.files_dir = s.dir + "/files"; }),
        Exception);
}

TEST(CloudFiles, DeletingTheAccountDeletesItsFiles) {
    auto s = files_server("files_delete");
    auto ann = member(s, "ann");
    ASSERT_TRUE(upload(ann, "a/b.bin", random_bytes(3000, 13)));
    ASSERT_TRUE(call(*ann.client, Cloud::delete_command, args({password})));
    EXPECT_EQ(files_under(fs::path(s.dir) / "files" / "blobs"), 0u);
    auto again = member(s, "ann");  // the name is free, and the new account has nothing
    EXPECT_TRUE(listed_names(again, "").empty());
}
