// The log writer thread (common/log_writer.h) against fake disks: order, the bound, what is
// dropped and how it is counted and marked, Flush with a disk that never answers; and the log
// accounting edges around it (a cut note, a cut event, a console that takes nothing).
#include "common/log_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "common/atomic_file.h"
#include "common/json.h"
#include "runner/job_dir.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace {

using common::LogWriteError;
using common::LogWriteErrors;
using common::LogWriter;
using common::LogWriterOptions;

// A disk the test controls: it takes everything, or holds every write until released, or takes
// `room` more bytes and then says ENOSPC.
struct FakeDisk {
  std::mutex mutex;
  std::condition_variable changed;
  std::string data;
  bool held = false;
  int writes_waiting = 0;
  size_t room = SIZE_MAX;
  int delay_ms = 0;  // every write takes this long: a slow disk that keeps up

  void Hold() {
    std::lock_guard<std::mutex> lock(mutex);
    held = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mutex);
    held = false;
    changed.notify_all();
  }
  // Waits until a write is held (the writer thread is inside the disk).
  void WaitForHeldWrite() {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return writes_waiting > 0; });
  }
  std::string Data() {
    std::lock_guard<std::mutex> lock(mutex);
    return data;
  }
};

class FakeSink : public common::LogSink {
 public:
  explicit FakeSink(std::shared_ptr<FakeDisk> disk) : disk_(std::move(disk)) {}
  ssize_t Write(const char* bytes, size_t size) override {
    std::unique_lock<std::mutex> lock(disk_->mutex);
    ++disk_->writes_waiting;
    disk_->changed.notify_all();
    disk_->changed.wait(lock, [&] { return !disk_->held; });
    --disk_->writes_waiting;
    if (disk_->delay_ms > 0) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(disk_->delay_ms));
      lock.lock();
    }
    if (disk_->room == 0) {
      errno = ENOSPC;
      return -1;
    }
    const size_t n = std::min(size, disk_->room);
    if (disk_->room != SIZE_MAX) disk_->room -= n;
    disk_->data.append(bytes, n);
    return static_cast<ssize_t>(n);
  }

 private:
  std::shared_ptr<FakeDisk> disk_;  // shared: a thread left behind may still be inside
};

std::string Lines(int first, int count) {
  std::string out;
  for (int i = first; i < first + count; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

TEST(LogWriterTest, EveryFileGetsItsLinesInOrder) {
  auto a = std::make_shared<FakeDisk>();
  auto b = std::make_shared<FakeDisk>();
  LogWriteErrors errors;
  {
    LogWriter writer({}, &errors);
    const int fa = writer.AddFile(std::make_unique<FakeSink>(a), "a.log");
    const int fb = writer.AddFile(std::make_unique<FakeSink>(b), "b.log");
    for (int i = 0; i < 1000; ++i) {
      writer.Submit(fa, "t", Lines(i * 3, 3), 3);
      writer.Submit(fb, "t", Lines(i, 1), 1);
    }
    EXPECT_TRUE(writer.Flush(30));
    EXPECT_EQ(a->Data(), Lines(0, 3000));
    EXPECT_EQ(b->Data(), Lines(0, 1000));
  }
  EXPECT_FALSE(errors.Any());
}

// A slow disk that keeps up: a full queue makes Submit wait for it (the worker's pipe would fill
// and the worker wait, as for any slow reader); nothing is dropped.
TEST(LogWriterTest, AFullQueueWaitsForASlowDiskThatKeepsUpAndLosesNothing) {
  auto disk = std::make_shared<FakeDisk>();
  disk->delay_ms = 5;
  LogWriteErrors errors;
  LogWriter writer({/*max_queued_bytes=*/64, 30, /*stall_s=*/2}, &errors);
  const int f = writer.AddFile(std::make_unique<FakeSink>(disk), "f.log");
  for (int i = 0; i < 200; i += 4) writer.Submit(f, "T", Lines(i, 4), 4);
  ASSERT_TRUE(writer.Flush(30));
  EXPECT_EQ(disk->Data(), Lines(0, 200));
  EXPECT_FALSE(errors.Any());
}

// The fix the first failure names is the setting that would have helped.
TEST(LogWriterTest, TheFirstFailureNamesTheSettingThatFitsItsReason) {
  const std::string stalled = common::DescribeFirstWriteError(
      "/j/rank-1.log", 0, "the disk did not keep up (a write to it had taken 1.0 s)");
  EXPECT_NE(stalled.find("raise job.log_buffer_mib"), std::string::npos) << stalled;
  const std::string at_end = common::DescribeFirstWriteError(
      "/j/rank-1.log", 0, "still not written 10.0 s after the end (a write to it had taken 12 s)");
  EXPECT_NE(at_end.find("raise job.log_flush_timeout_s"), std::string::npos) << at_end;
  EXPECT_EQ(at_end.find("log_buffer_mib"), std::string::npos) << at_end;
  const std::string full = common::DescribeFirstWriteError("/j/rank-1.log", ENOSPC, "");
  EXPECT_NE(full.find("free space under job.log_root"), std::string::npos) << full;
}

// One batch larger than the whole bound (a pipe read of many short lines) on a disk that keeps up:
// taken whole once the queue is empty, nothing dropped.
TEST(LogWriterTest, ABatchLargerThanTheBoundIsTakenWholeByADiskThatKeepsUp) {
  auto disk = std::make_shared<FakeDisk>();
  disk->delay_ms = 5;
  LogWriteErrors errors;
  LogWriter writer({/*max_queued_bytes=*/64, 30, /*stall_s=*/0.05}, &errors);
  const int f = writer.AddFile(std::make_unique<FakeSink>(disk), "f.log");
  for (int i = 0; i < 300; i += 100) writer.Submit(f, "T", Lines(i, 100), 100);  // ~1 KiB each
  ASSERT_TRUE(writer.Flush(30));
  EXPECT_EQ(disk->Data(), Lines(0, 300));
  EXPECT_FALSE(errors.Any());
}

// A held disk: the queue takes up to its bound, whole lines; the rest is dropped and counted, and
// once the disk takes writes again one note marks the gap before the next lines.
TEST(LogWriterTest, AStalledDiskDropsWholeLinesBeyondTheBoundCountsAndMarksThem) {
  auto disk = std::make_shared<FakeDisk>();
  LogWriteErrors errors;
  LogWriter writer({/*max_queued_bytes=*/100, /*flush_timeout_s=*/30, /*stall_s=*/0.05}, &errors);
  const int f = writer.AddFile(std::make_unique<FakeSink>(disk), "/x/rank-1.log", 1);
  disk->Hold();
  writer.Submit(f, "T0", "first\n", 1);
  disk->WaitForHeldWrite();  // "first" is being written: 6 of the 100 bytes
  const std::string ten(9, 'a');
  for (int i = 0; i < 20; ++i) writer.Submit(f, "T" + std::to_string(i + 1), ten + "\n", 1);
  // 94 bytes free: 9 lines of 10 fit, 11 do not.
  std::vector<LogWriteError> lost = errors.Snapshot();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].rank, 1);
  EXPECT_EQ(lost[0].lines_lost, 11u);
  EXPECT_EQ(lost[0].bytes_lost, 110u);
  EXPECT_EQ(lost[0].reason.rfind("the disk did not keep up (a write to it had taken ", 0), 0u)
      << lost[0].reason;
  // A batch that fits in part keeps its first lines.
  disk->Release();
  ASSERT_TRUE(writer.Flush(30));  // queues the gap's note, stamped now
  writer.Submit(f, "T30", "after\n", 1);
  ASSERT_TRUE(writer.Flush(30));
  std::string expected = "first\n";
  for (int i = 0; i < 9; ++i) expected += ten + "\n";
  const std::string data = disk->Data();
  ASSERT_EQ(data.substr(0, expected.size()), expected);
  EXPECT_TRUE(std::regex_match(
      data.substr(expected.size()),
      std::regex("\\S+ \\[runner\\] 11 lines \\(110 bytes\\) of this log were dropped between "
                 "T10 and T20: the disk did not keep up \\(a write to it had taken [0-9.]+ s\\)\n"
                 "after\n")))
      << data;
  EXPECT_EQ(errors.Snapshot()[0].lines_lost, 11u);  // the note and "after" were written
}

TEST(LogWriterTest, ABatchThatFitsInPartKeepsItsFirstWholeLines) {
  auto disk = std::make_shared<FakeDisk>();
  LogWriteErrors errors;
  LogWriter writer({/*max_queued_bytes=*/16, 30, /*stall_s=*/0.05}, &errors);
  const int f = writer.AddFile(std::make_unique<FakeSink>(disk), "f.log");
  disk->Hold();
  writer.Submit(f, "T", "xxxxx\n", 1);
  disk->WaitForHeldWrite();                              // 6 of the 16 bytes are being written
  writer.Submit(f, "T", "aaaa\nbbbb\ncccc\ndddd\n", 4);  // 20 bytes: 2 lines fit
  EXPECT_EQ(errors.Snapshot().at(0).lines_lost, 2u);
  EXPECT_EQ(errors.Snapshot().at(0).bytes_lost, 10u);
  disk->Release();
  ASSERT_TRUE(writer.Flush(30));  // the gap's note is written at the flush
  EXPECT_EQ(disk->Data().substr(0, 16), "xxxxx\naaaa\nbbbb\n");
  EXPECT_NE(
      disk->Data().find("[runner] 2 lines (10 bytes) of this log were dropped between T and T"),
      std::string::npos)
      << disk->Data();
}

// A disk that never answers: Flush waits its time, then counts what is still queued (being
// written included) as lost, and the writer takes nothing more.
TEST(LogWriterTest, FlushWithAStalledDiskWaitsItsTimeThenCountsWhatIsQueued) {
  auto disk = std::make_shared<FakeDisk>();
  LogWriteErrors errors;
  auto writer = std::make_unique<LogWriter>(LogWriterOptions{1 << 20, 0.2}, &errors);
  const int f = writer->AddFile(std::make_unique<FakeSink>(disk), "/x/rank-0.log", 0);
  disk->Hold();
  writer->Submit(f, "T", Lines(0, 3), 3);
  disk->WaitForHeldWrite();
  writer->Submit(f, "T", Lines(3, 2), 2);
  EXPECT_FALSE(writer->Flush(0.2));
  std::vector<LogWriteError> lost = errors.Snapshot();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].lines_lost, 5u);
  EXPECT_EQ(lost[0].bytes_lost, Lines(0, 5).size());
  EXPECT_EQ(lost[0].reason.rfind("still not written 0.2 s after the end", 0), 0u) << lost[0].reason;
  writer.reset();   // returns although the disk still holds the write
  disk->Release();  // the thread left behind ends; it counts nothing more
  EXPECT_EQ(errors.Snapshot()[0].lines_lost, 5u);
}

// A full disk: the lines of a failed write are counted; the next write that works starts with
// the note. A note itself cut short is not called a line of the worker's.
TEST(LogWriterTest, AFullDiskCountsLinesAndACutNoteIsNotCalledALostLine) {
  auto disk = std::make_shared<FakeDisk>();
  disk->room = 3;  // "abc" of "abcdef\n", then ENOSPC
  LogWriteErrors errors;
  LogWriter writer({}, &errors);
  const int f = writer.AddFile(std::make_unique<FakeSink>(disk), "f.log");
  writer.Submit(f, "T", "abcdef\n", 1);
  ASSERT_TRUE(writer.Flush(30));
  EXPECT_EQ(errors.Snapshot().at(0).lines_lost, 1u);
  {
    std::lock_guard<std::mutex> lock(disk->mutex);
    disk->room = 10;  // the note starts, then ENOSPC again
  }
  writer.Submit(f, "T", "second\n", 1);
  ASSERT_TRUE(writer.Flush(30));
  EXPECT_EQ(errors.Snapshot().at(0).lines_lost, 2u);
  {
    std::lock_guard<std::mutex> lock(disk->mutex);
    disk->room = SIZE_MAX;
  }
  writer.Submit(f, "T", "third\n", 1);
  ASSERT_TRUE(writer.Flush(30));
  const std::string data = disk->Data();
  // "abc" cut, its newline, 9 bytes of a note cut, its newline, the note again, "third".
  const std::regex shape(
      "abc\n[^\n]{9}\n\\S+ \\[runner\\] 2 lines \\(\\d+ bytes\\) of this log were lost here: "
      "cannot write: No space left on device\nthird\n");
  EXPECT_TRUE(std::regex_match(data, shape)) << data;
}

TEST(EventLineTest, AnEventAfterALineCutShortStartsOnANewLine) {
  testing_support::TempDir tmp;
  const std::string path = tmp.Write("events.jsonl", "{\"event\":\"a\"}\n{\"eve");
  common::JsonObject event;
  event.Add("event", "b");
  ASSERT_FALSE(common::AppendEventLine(path, event));
  ASSERT_FALSE(common::AppendEventLine(path, event));
  EXPECT_EQ(testing_support::ReadFile(path),
            "{\"event\":\"a\"}\n{\"eve\n{\"event\":\"b\"}\n{\"event\":\"b\"}\n");
}

// A console that takes nothing (stderr on /dev/full): a batch of lines counts as its lines.
TEST(ConsoleTest, AFailedBatchCountsEveryLineInIt) {
  const int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  const int saved = dup(STDERR_FILENO);
  dup2(full, STDERR_FILENO);
  LogWriteErrors errors;
  runner::WriteToConsole("a\nb\nc\n", &errors);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(full);
  ASSERT_EQ(errors.Snapshot().size(), 1u);
  EXPECT_EQ(errors.Snapshot()[0].file, "console (stderr)");
  EXPECT_EQ(errors.Snapshot()[0].lines_lost, 3u);
  EXPECT_EQ(errors.Snapshot()[0].bytes_lost, 6u);
}

TEST(LogWriteErrorsTest, ANewAttemptKeepsTheCountsAndSaysAFileAgain) {
  LogWriteErrors errors;
  int said = 0;
  errors.SetReporter([&](const std::string&) { ++said; });
  EXPECT_TRUE(errors.Record("events.jsonl", 28, 10, 1));
  EXPECT_FALSE(errors.Record("events.jsonl", 28, 10, 1));
  errors.NewAttempt();
  EXPECT_TRUE(errors.Record("events.jsonl", 28, 10, 1));
  EXPECT_EQ(said, 2);
  ASSERT_EQ(errors.Snapshot().size(), 1u);
  EXPECT_EQ(errors.Snapshot()[0].lines_lost, 3u);
}

}  // namespace
