// The key file on disk: private directory and file, crash leftovers, links, other owners, and
// processes that create the key at the same moment.
#include "rpc/key_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace hawser;
using namespace hawser::detail;

namespace {

// A fresh scratch directory per test, removed afterwards.
class KeyFile : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = ::testing::TempDir() + "hawser_key_file_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::filesystem::remove_all(root_);
        std::filesystem::create_directories(root_);
    }
    void TearDown() override { std::filesystem::remove_all(root_); }
    std::string root_;
};

mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
}

void write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
}

TEST_F(KeyFile, CreatesAPrivateDirectoryAndFileThenReusesTheKey) {
    auto dir = root_ + "/data/keys";
    auto first = load_or_create_key(dir);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(mode_of(root_ + "/data"), 0700u);
    EXPECT_EQ(mode_of(dir), 0700u);
    EXPECT_EQ(mode_of(dir + "/server.key"), 0600u);
    auto again = load_or_create_key(dir);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->public_key, first->public_key);
    // Only the key is left: no temporary file.
    std::vector<std::string> names;
    for (auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"server.key"});
}

TEST_F(KeyFile, ACrashLeftoverDoesNotBlockStartButAnEmptyKeyIsAClearError) {
    // A crash between creating and renaming leaves a temporary file; it is ignored.
    write_file(root_ + "/server.key.tmp-Ab12Cd", "");
    write_file(root_ + "/server.key.tmp-Xy34Zw", "0123");
    auto keys = load_or_create_key(root_);
    ASSERT_TRUE(keys) << keys.error().message;
    // An empty key under the real name (an older version's crash) is not silently replaced:
    // peers pin the key, so the operator decides.
    write_file(root_ + "/server.key", "");
    auto r = load_or_create_key(root_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("is empty"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("delete it"), std::string::npos) << r.error().message;
}

TEST_F(KeyFile, ASymbolicLinkIsRefused) {
    // A key the attacker knows, linked under the server's name.
    auto planted = load_or_create_key_file(root_ + "/elsewhere/known.key");
    ASSERT_TRUE(planted);
    std::filesystem::create_directories(root_ + "/data");
    std::filesystem::create_symlink(root_ + "/elsewhere/known.key", root_ + "/data/server.key");
    auto r = load_or_create_key(root_ + "/data");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
}

TEST_F(KeyFile, OthersKeysAndExposedKeysAreRefused) {
    auto path = root_ + "/server.key";
    ASSERT_TRUE(load_or_create_key_file(path));
    ::chmod(path.c_str(), 0640);
    auto exposed = load_or_create_key_file(path);
    ASSERT_FALSE(exposed);
    EXPECT_NE(exposed.error().message.find("chmod 600"), std::string::npos);
    ::chmod(path.c_str(), 0600);
    write_file(path, "not a key");
    EXPECT_FALSE(load_or_create_key_file(path));
    if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root";
    ASSERT_TRUE(load_or_create_key_file(root_ + "/other.key"));
    ASSERT_EQ(::chown((root_ + "/other.key").c_str(), 4321, 4321), 0);
    auto foreign = load_or_create_key_file(root_ + "/other.key");
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.error().message.find("uid 4321"), std::string::npos)
        << foreign.error().message;
}

TEST_F(KeyFile, ProcessesCreatingAtOnceAllGetTheSameKey) {
    for (int round = 0; round < 5; ++round) {
        auto dir = root_ + "/round" + std::to_string(round);
        constexpr int n = 6;
        int start[2], results[2];
        ASSERT_EQ(::pipe(start), 0);
        ASSERT_EQ(::pipe(results), 0);
        std::vector<pid_t> children;
        for (int i = 0; i < n; ++i) {
            pid_t pid = ::fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                ::close(start[1]);
                char go;
                (void)::read(start[0], &go, 1);  // all start together when the pipe closes
                auto keys = load_or_create_key(dir);
                std::string line = keys ? noise::to_hex(keys->public_key) : std::string(64, '!');
                (void)::write(results[1], line.data(), line.size());  // 64 bytes: atomic
                ::_exit(keys ? 0 : 1);
            }
            children.push_back(pid);
        }
        ::close(start[0]);
        ::close(results[1]);
        ::close(start[1]);  // go
        std::string all;
        char buf[512];
        ssize_t got;
        while ((got = ::read(results[0], buf, sizeof buf)) > 0)
            all.append(buf, static_cast<std::size_t>(got));
        ::close(results[0]);
        for (pid_t pid : children) {
            int status = 0;
            ::waitpid(pid, &status, 0);
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
        }
        ASSERT_EQ(all.size(), 64u * n);
        for (int i = 1; i < n; ++i) EXPECT_EQ(all.substr(64 * i, 64), all.substr(0, 64));
        auto on_disk = load_or_create_key(dir);
        ASSERT_TRUE(on_disk);
        EXPECT_EQ(noise::to_hex(on_disk->public_key), all.substr(0, 64));
    }
}

}  // namespace
