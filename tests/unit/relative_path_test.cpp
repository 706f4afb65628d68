// Unit tests for normalise_relative_path: every refusal rule, the limits, and normal forms.
#include "hawser/relative_path.hpp"

#include <gtest/gtest.h>

#include <string>

using hawser::Errc;
using hawser::normalise_relative_path;
using hawser::PathLimits;

namespace {

// The message of the refusal, or a note that the name was accepted (so a failure reads well).
std::string refusal(std::string_view name, const PathLimits& limits = {}) {
    auto r = normalise_relative_path(name, limits);
    if (r.ok()) return "accepted as '" + *r + "'";
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    return r.error().message;
}

bool refused(std::string_view name, const PathLimits& limits = {}) {
    return !normalise_relative_path(name, limits).ok();
}

std::string normal(std::string_view name) {
    auto r = normalise_relative_path(name);
    return r.ok() ? *r : "refused: " + r.error().message;
}

}  // namespace

TEST(RelativePath, AcceptsAndNormalises) {
    EXPECT_EQ(normal("x"), "x");
    EXPECT_EQ(normal("a/./b//c/"), "a/b/c");
    EXPECT_EQ(normal("./a"), "a");
    EXPECT_EQ(normal("a/b/c"), "a/b/c");
    EXPECT_EQ(normal("a//"), "a");
    EXPECT_EQ(normal("a/."), "a");
}

TEST(RelativePath, KeepsTrailingDotsAndSpacesInSegments) {
    EXPECT_EQ(normal("a./b "), "a./b ");
    EXPECT_EQ(normal("..."), "...");
    EXPECT_EQ(normal(".hidden/x.part"), ".hidden/x.part");
}

TEST(RelativePath, AcceptsOrdinaryUnicode) {
    EXPECT_EQ(normal("données/été.txt"), "données/été.txt");
    EXPECT_EQ(normal("文件/报告.pdf"), "文件/报告.pdf");
    EXPECT_EQ(normal("photos/\xF0\x9F\x98\x80.jpg"), "photos/\xF0\x9F\x98\x80.jpg");  // U+1F600
    EXPECT_EQ(normal("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF, the last code point
}

TEST(RelativePath, RefusesEmptyNames) {
    EXPECT_NE(refusal("").find("empty"), std::string::npos);
    EXPECT_TRUE(refused("."));
    EXPECT_TRUE(refused("./"));
    EXPECT_TRUE(refused("././/."));
}

TEST(RelativePath, RefusesParentSegments) {
    EXPECT_EQ(refusal("../x"), "path: '..' is not allowed");
    EXPECT_EQ(refusal("a/../../b"), "path: '..' is not allowed");
    EXPECT_EQ(refusal("a/../b"), "path: '..' is not allowed");  // refused, never resolved
    EXPECT_EQ(refusal(".."), "path: '..' is not allowed");
    EXPECT_EQ(refusal("a/.."), "path: '..' is not allowed");
    EXPECT_EQ(normal("a/..b/c.."), "a/..b/c..");  // only a whole ".." segment is refused
}

TEST(RelativePath, RefusesAbsolutePaths) {
    EXPECT_NE(refusal("/etc/passwd").find("absolute"), std::string::npos);
    EXPECT_TRUE(refused("//server/share"));
    EXPECT_NE(refusal("\\etc\\passwd").find("'\\'"), std::string::npos);
    EXPECT_NE(refusal("C:").find("':'"), std::string::npos);
    EXPECT_TRUE(refused("C:/Windows"));
    EXPECT_TRUE(refused("c:file"));
}

TEST(RelativePath, RefusesBackslashAndColonAnywhere) {
    EXPECT_TRUE(refused("a\\..\\b"));
    EXPECT_TRUE(refused("a\\b"));
    EXPECT_TRUE(refused("file.txt:stream"));
}

TEST(RelativePath, RefusesControlCharacters) {
    std::string with_nul("a\0b", 3);
    ASSERT_EQ(with_nul.size(), 3u);
    EXPECT_NE(refusal(with_nul).find("0x00"), std::string::npos);
    EXPECT_TRUE(refused("a\nb"));
    EXPECT_TRUE(refused("a\tb"));
    EXPECT_TRUE(refused("\x1F"));
    EXPECT_NE(refusal("a\x7F").find("0x7F"), std::string::npos);
}

TEST(RelativePath, RefusesInvalidUtf8) {
    EXPECT_NE(refusal("\xC0\xAF").find("UTF-8"), std::string::npos);  // overlong '/'
    EXPECT_TRUE(refused("\xE0\x80\xAF"));                             // overlong, 3 bytes
    EXPECT_TRUE(refused("\xF0\x80\x80\xAF"));                         // overlong, 4 bytes
    EXPECT_TRUE(refused("a\x80"));                                    // lone continuation byte
    EXPECT_TRUE(refused("\xED\xA0\x80"));                             // surrogate U+D800
    EXPECT_TRUE(refused("\xED\xBF\xBF"));                             // surrogate U+DFFF
    EXPECT_TRUE(refused("\xF4\x90\x80\x80"));                         // U+110000
    EXPECT_TRUE(refused("\xF5\x80\x80\x80"));
    EXPECT_TRUE(refused("\xFF"));
    EXPECT_TRUE(refused("\xC3"));        // truncated at the end
    EXPECT_TRUE(refused("\xE2\x82/x"));  // truncated by a '/'
    EXPECT_TRUE(refused("\xC3x"));       // lead byte without its continuation
}

TEST(RelativePath, RefusesBidiAndInvisibleCharacters) {
    EXPECT_NE(refusal("invoice\xE2\x80\xAEgpj.exe").find("U+202E"), std::string::npos);
    EXPECT_TRUE(refused("a\xE2\x80\x8E"));  // U+200E LRM
    EXPECT_TRUE(refused("a\xE2\x80\x8F"));  // U+200F RLM
    EXPECT_TRUE(refused("a\xE2\x80\xAA"));  // U+202A
    EXPECT_TRUE(refused("a\xE2\x81\xA6"));  // U+2066
    EXPECT_TRUE(refused("a\xE2\x81\xA9"));  // U+2069
    EXPECT_TRUE(refused("a\xE2\x80\x8B"));  // U+200B zero-width space
    EXPECT_TRUE(refused("a\xE2\x80\x8D"));  // U+200D zero-width joiner
    EXPECT_TRUE(
        refused("\xEF\xBB\xBF"
                "a"));                                    // U+FEFF
    EXPECT_EQ(normal("a\xE2\x80\xAF"), "a\xE2\x80\xAF");  // U+202F narrow no-break space is fine
}

TEST(RelativePath, RefusesSlashAndDotLookalikes) {
    EXPECT_NE(refusal("a\xEF\xBC\x8F..\xEF\xBC\x8F"
                      "b")
                  .find("U+FF0F"),
              std::string::npos);
    EXPECT_TRUE(refused("\xEF\xBC\x8E\xEF\xBC\x8E"));  // U+FF0E twice: a fullwidth ".."
    EXPECT_TRUE(
        refused("a\xE2\x88\x95"
                "b"));  // U+2215 division slash
    EXPECT_TRUE(
        refused("a\xE2\x81\x84"
                "b"));  // U+2044 fraction slash
}

TEST(RelativePath, RefusesLongSegments) {
    EXPECT_EQ(normal(std::string(255, 'a')), std::string(255, 'a'));
    EXPECT_NE(refusal(std::string(256, 'a')).find("max_component_bytes"), std::string::npos);
    EXPECT_TRUE(refused("x/" + std::string(256, 'a') + "/y"));
}

TEST(RelativePath, RefusesDeepNames) {
    std::string name = "d";
    for (int i = 1; i < 32; ++i) name += "/d";
    EXPECT_EQ(normal(name), name);  // 32 segments
    EXPECT_NE(refusal(name + "/d").find("max_depth"), std::string::npos);
    EXPECT_EQ(normal("./" + name + "//./"), name);  // removed segments do not count
}

TEST(RelativePath, RefusesLongNames) {
    std::string ten_kb;
    while (ten_kb.size() < 10 * 1024) ten_kb += std::string(100, 'a') + "/";
    EXPECT_TRUE(refused(ten_kb));
    EXPECT_TRUE(refused(std::string(10 * 1024, 'a')));

    // 5 segments of 200 bytes and '/' between them: 1004 bytes, then 1205 with 6.
    std::string name = std::string(200, 'a');
    for (int i = 1; i < 5; ++i) name += "/" + std::string(200, 'a');
    EXPECT_EQ(normal(name), name);
    EXPECT_NE(refusal(name + "/" + std::string(200, 'a')).find("max_bytes"), std::string::npos);

    // The limit applies to the normal form, not to what was sent.
    std::string padded = "a";
    while (padded.size() < 2000) padded += "/./";
    padded += "b";
    EXPECT_EQ(normal(padded), "a/b");
}

TEST(RelativePath, UsesTheGivenLimits) {
    PathLimits tight{.max_bytes = 5, .max_component_bytes = 3, .max_depth = 2};
    EXPECT_TRUE(normalise_relative_path("ab/cd", tight).ok());
    EXPECT_NE(refusal("ab/cd/e", tight).find("max_depth"), std::string::npos);
    EXPECT_NE(refusal("abcd", tight).find("max_component_bytes"), std::string::npos);
    EXPECT_NE(refusal("abc/cd", tight).find("max_bytes"), std::string::npos);
}
