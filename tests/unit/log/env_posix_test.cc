// The POSIX Env (runtime/src/log/env_posix.cc) against the contract in mmsb/env.h: what the log
// and checkpoints rely on, on a real file system.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/env.h"

#include "log/prewrite.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::TempDir;

std::vector<std::uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::string ReadAll(Env* env, const std::string& path) {
  auto f = env->NewRandomAccessFile(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (!f.ok()) return "";
  std::string out((*f)->Size(), '\0');
  std::size_t got = 0;
  EXPECT_TRUE((*f)->Read(0, out.size(), reinterpret_cast<std::uint8_t*>(out.data()), &got).ok());
  out.resize(got);
  return out;
}

TEST(EnvPosix, AppendedBytesReadBackInOrderAndSizeFollows) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("f");
  auto w = env->NewWritableFile(path);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const auto a = Bytes("hello "), b = Bytes("world"), c = Bytes("!");
  ASSERT_TRUE((*w)->Append(a).ok());
  std::span<const std::uint8_t> pieces[] = {b, c};
  ASSERT_TRUE((*w)->AppendV(pieces).ok());
  EXPECT_EQ((*w)->Size(), 12u);
  ASSERT_TRUE((*w)->Sync().ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(ReadAll(env, path), "hello world!");
  auto size = env->GetFileSize(path);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 12u);
}

// The durable log's zeros ahead (log/prewrite.h): real zeros past the appended bytes, appends
// overwrite them without growing the file, Size() stays the appended bytes, Close cuts the rest.
TEST(EnvPosix, ZerosWrittenAheadAreOverwrittenByAppendsAndCutAtClose) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("f");
  auto w = env->NewWritableFile(path);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto* zeros = dynamic_cast<log::ZeroPrewriter*>(w->get());
  ASSERT_NE(zeros, nullptr) << "the POSIX file writes zeros ahead";
  ASSERT_TRUE((*w)->Append(Bytes("hello ")).ok());
  ASSERT_TRUE(zeros->PrewriteZeros(100).ok());
  EXPECT_EQ((*w)->Size(), 6u);
  const std::uint64_t ahead = *env->GetFileSize(path);
  EXPECT_GE(ahead, 106u);
  std::string expect = "hello ";
  expect.resize(ahead, '\0');
  EXPECT_EQ(ReadAll(env, path), expect);
  ASSERT_TRUE((*w)->Append(Bytes("world")).ok());
  ASSERT_TRUE(zeros->PrewriteZeros(50).ok());  // still covered: writes nothing
  EXPECT_EQ(*env->GetFileSize(path), ahead) << "appends went into the zeros";
  expect.replace(6, 5, "world");
  EXPECT_EQ(ReadAll(env, path), expect);
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(ReadAll(env, path), "hello world");
}

TEST(EnvPosix, NewWritableFileTruncatesAnExistingFile) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("f");
  {
    auto w = env->NewWritableFile(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Bytes("old contents")).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto w = env->NewWritableFile(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(ReadAll(env, path), "");
}

TEST(EnvPosix, ReadPastTheEndReturnsFewerBytes) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("f");
  auto w = env->NewWritableFile(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Bytes("0123456789")).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = env->NewRandomAccessFile(path);
  ASSERT_TRUE(r.ok());
  std::uint8_t buf[16] = {};
  std::size_t got = 99;
  ASSERT_TRUE((*r)->Read(6, sizeof buf, buf, &got).ok());
  EXPECT_EQ(got, 4u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), got), "6789");
  ASSERT_TRUE((*r)->Read(100, sizeof buf, buf, &got).ok());
  EXPECT_EQ(got, 0u);
}

TEST(EnvPosix, MappedFileMapsTheWholeFileAndEmptyFilesAreNotMapped) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("f");
  auto w = env->NewWritableFile(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Bytes("mapped bytes")).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto m = env->NewMappedFile(path);
  ASSERT_TRUE(m.ok());
  const auto span = (*m)->Map();
  ASSERT_EQ(span.size(), 12u);
  EXPECT_EQ(std::string(span.begin(), span.end()), "mapped bytes");

  const std::string empty = dir.Sub("empty");
  ASSERT_TRUE((*env->NewWritableFile(empty))->Close().ok());
  auto e = env->NewMappedFile(empty);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE((*e)->Map().empty());
  EXPECT_EQ((*e)->Size(), 0u);
}

TEST(EnvPosix, MissingPathsAndDirectoriesAreErrorsNamingThePath) {
  TempDir dir;
  Env* env = Env::Default();
  auto missing = env->NewRandomAccessFile(dir.Sub("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos)
      << missing.status().ToString();
  auto is_dir = env->NewRandomAccessFile(dir.path());
  ASSERT_FALSE(is_dir.ok());
  EXPECT_NE(is_dir.status().message().find("directory"), std::string::npos)
      << is_dir.status().ToString();
  EXPECT_FALSE(env->GetFileSize(dir.Sub("nope")).ok());
  EXPECT_FALSE(env->GetChildren(dir.Sub("nope")).ok());
  EXPECT_FALSE(env->RemoveFile(dir.Sub("nope")).ok());
}

TEST(EnvPosix, DirectoriesListRenameAndRemove) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string sub = dir.Sub("sub");
  ASSERT_TRUE(env->CreateDir(sub).ok());
  ASSERT_TRUE(env->CreateDir(sub).ok()) << "an existing directory is fine";
  EXPECT_TRUE(env->IsDirectory(sub));
  for (const char* name : {"a", "b"}) {
    auto w = env->NewWritableFile(JoinPath(sub, name));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  ASSERT_TRUE(env->RenameFile(JoinPath(sub, "a"), JoinPath(sub, "c")).ok());
  ASSERT_TRUE(env->SyncDir(sub).ok());
  auto children = env->GetChildren(sub);
  ASSERT_TRUE(children.ok());
  std::sort(children->begin(), children->end());
  EXPECT_EQ(*children, (std::vector<std::string>{"b", "c"}));
  ASSERT_TRUE(env->RemoveFile(JoinPath(sub, "b")).ok());
  EXPECT_FALSE(env->FileExists(JoinPath(sub, "b")));
  EXPECT_TRUE(env->FileExists(JoinPath(sub, "c")));

  // A file where a directory is asked for is an error, not a silent success.
  EXPECT_FALSE(env->CreateDir(JoinPath(sub, "c")).ok());
}

TEST(EnvPosix, TruncateCutsTheFile) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("f");
  auto w = env->NewWritableFile(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Bytes("0123456789")).ok());
  ASSERT_TRUE((*w)->Close().ok());
  ASSERT_TRUE(env->TruncateFile(path, 4).ok());
  EXPECT_EQ(ReadAll(env, path), "0123");
}

TEST(EnvPosix, SecondLockOfTheSameFileFailsNamingTheHolder) {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("LOCK");
  auto first = env->LockFile(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = env->LockFile(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(std::to_string(::getpid())), std::string::npos)
      << second.status().ToString();
  first->reset();
  auto third = env->LockFile(path);
  EXPECT_TRUE(third.ok()) << "released with its object: " << third.status().ToString();
}

TEST(EnvPosix, JoinPathUsesOneSlash) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

}  // namespace
}  // namespace mmsb
