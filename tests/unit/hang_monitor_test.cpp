// The watchdog's local watch and its agreement across agents, on invented observations and times:
// monitors play agents and hand each other their messages (suspicions to agent 0 alone, its
// verdict to every agent).
#include "runner/hang_monitor.h"

#include <gtest/gtest.h>

#include <map>

namespace runner {
namespace {

class FakeProbe : public WorkerProbe {
 public:
  WorkerObservation Observe(const WatchedWorker& worker) override { return seen[worker.rank]; }
  // Rank `rank` advances: its heartbeat counter moves.
  void Advance(int rank, int64_t step, const std::string& phase, int64_t collective = 0,
               bool inside = false) {
    common::Heartbeat& h = *(seen[rank].heartbeat ? seen[rank].heartbeat
                                                  : (seen[rank].heartbeat = common::Heartbeat()));
    ++h.beats;
    h.step = step;
    h.phase = phase;
    h.collective = collective;
    h.in_collective = inside;
    seen[rank].proc = ProcSample{'S', 1.0, "futex_wait_queue"};
  }
  std::map<int, WorkerObservation> seen;
};

class FakeSink : public HangSink {
 public:
  void Warn(const std::string& line) override { warnings.push_back(line); }
  void Info(const std::string& line) override { infos.push_back(line); }
  void Event(const std::string& name, const common::JsonObject&) override {
    events.push_back(name);
  }
  void Send(const std::string& message) override { sent.push_back(message); }
  void SendFirst(const std::string& message) override {
    sent.push_back(message);
    ++to_first;
  }
  void Progress(const std::string& json) override { progress = json; }
  std::vector<std::string> warnings, infos, events, sent;
  int to_first = 0;  // of `sent`, those to agent 0 alone
  std::string progress;
};

HangOptions Options() {
  HangOptions o;
  o.timeout_s = 10;
  o.warn_fraction = 0.5;
  o.init_timeout_s = 20;
  o.first_step_timeout_s = 30;
  o.checkpoint_timeout_s = 60;
  o.sample_s = 1;
  return o;
}

struct Agent {
  Agent(int agent, int first_rank, int agents = 2)
      : monitor(Options(), 0, agent, agents, agent, "n" + std::to_string(agent + 1)) {
    for (int i = 0; i < 2; ++i) {
      monitor.watch().Add(i, {first_rank + i, i, 100 + first_rank + i, "hb", "log"}, 0);
      probe.Advance(first_rank + i, 1, "forward");
    }
  }
  void Tick(double t) { monitor.Tick(probe, t, 1e9 + t, false, "running", sink); }
  HangMonitor monitor;
  FakeProbe probe;
  FakeSink sink;
};

// Delivers what `from` sent since the last call to `to`.
void Deliver(Agent& from, Agent& to, size_t& delivered) {
  for (; delivered < from.sink.sent.size(); ++delivered) {
    to.monitor.OnMessage(*HangMessage::Parse(from.sink.sent[delivered]), to.sink);
  }
}

TEST(HangMonitor, TwoAgentsAgreeOnTheSameVerdictWhenNoRankAdvances) {
  Agent a(0, 0), b(1, 2);
  size_t from_a = 0, from_b = 0;
  for (double t = 0; t <= 3; t += 1) {
    a.Tick(t), b.Tick(t);
  }
  // Rank 3 stops in phase data at step 5; the others wait in all-reduce #9.
  a.probe.Advance(0, 5, "all-reduce", 9, true);
  a.probe.Advance(1, 5, "all-reduce", 9, true);
  b.probe.Advance(2, 5, "all-reduce", 9, true);
  b.probe.Advance(3, 5, "data", 8);
  b.probe.seen[3].proc = ProcSample{'T', 2.0, "do_signal_stop"};
  for (double t = 4; t <= 13 && !a.monitor.judged(); t += 1) {
    a.Tick(t), b.Tick(t);
    Deliver(a, b, from_a), Deliver(b, a, from_b);
  }
  ASSERT_EQ(a.sink.warnings.size(), 1u);
  EXPECT_NE(a.sink.warnings[0].find("no rank on this node has advanced for 5 s (hang verdict at "
                                    "10 s"),
            std::string::npos)
      << a.sink.warnings[0];
  EXPECT_FALSE(a.monitor.judged());  // b has not suspected yet at the same tick
  a.Tick(15), b.Tick(15);
  Deliver(a, b, from_a), Deliver(b, a, from_b);
  a.Tick(16), b.Tick(16);
  Deliver(a, b, from_a), Deliver(b, a, from_b);
  ASSERT_TRUE(a.monitor.judged());
  ASSERT_TRUE(b.monitor.judged());
  const std::optional<HangVerdict> va = a.monitor.TakeVerdict();
  const std::optional<HangVerdict> vb = b.monitor.TakeVerdict();
  ASSERT_TRUE(va && vb);
  EXPECT_EQ(va->lines, vb->lines);
  EXPECT_EQ(va->lines.front(),
            "HANG at step 5: rank 3 (n2, pid 103) stopped (T) in phase data at step 5 for 11 s; "
            "ranks 0-2 waiting in all-reduce #9");
}

TEST(HangMonitor, ASuspicionIsTakenBackWhenTheRanksAdvanceAgain) {
  Agent a(0, 0), b(1, 2);
  size_t from_a = 0, from_b = 0;
  b.probe.Advance(2, 5, "all-reduce", 9, true);
  b.probe.Advance(3, 5, "all-reduce", 9, true);
  for (double t = 0; t <= 11; t += 1) {
    a.probe.Advance(0, 5 + static_cast<int64_t>(t), "forward");  // a's ranks keep going
    a.Tick(t);
    b.Tick(t);
    Deliver(a, b, from_a), Deliver(b, a, from_b);
  }
  ASSERT_EQ(b.sink.sent.size(), 1u);  // b tells agent 0 it suspects...
  EXPECT_EQ(b.sink.to_first, 1);
  EXPECT_EQ(HangMessage::Parse(b.sink.sent[0])->kind, HangMessage::Kind::kSuspect);
  b.probe.Advance(2, 6, "forward");  // ...until its ranks advance
  b.Tick(12);
  Deliver(b, a, from_b);
  ASSERT_EQ(b.sink.sent.size(), 2u);
  EXPECT_EQ(b.sink.to_first, 2);
  EXPECT_EQ(HangMessage::Parse(b.sink.sent[1])->kind, HangMessage::Kind::kClear);
  EXPECT_EQ(b.sink.infos.back(), "the workers on this node advance again");
  EXPECT_TRUE(a.sink.sent.empty());
  EXPECT_FALSE(a.monitor.judged());
  EXPECT_FALSE(b.monitor.judged());
}

// Three agents: the suspicions (with the views) go to agent 0 alone, agent 0 judges once all
// three suspect, and its verdict reaches the others as lines without any view.
TEST(HangMonitor, AgentZeroJudgesAndTheOthersGetTheLinesOnly) {
  Agent a(0, 0, 3), b(1, 2, 3), c(2, 4, 3);
  std::vector<Agent*> agents = {&a, &b, &c};
  for (Agent* x : agents) {
    for (int i = 0; i < 2; ++i) {
      const int rank = (x == &a ? 0 : x == &b ? 2 : 4) + i;
      x->probe.Advance(rank, 7, "all-reduce", 3, rank != 5);  // rank 5 never entered #3
    }
  }
  size_t from[3][3] = {};  // [sender][receiver]: messages delivered
  for (double t = 0; t <= 16 && !(b.monitor.judged() && c.monitor.judged()); t += 1) {
    for (Agent* x : agents) x->Tick(t);
    // What 1 and 2 send goes to agent 0 only; what agent 0 sends goes to both.
    Deliver(b, a, from[1][0]), Deliver(c, a, from[2][0]);
    Deliver(a, b, from[0][1]), Deliver(a, c, from[0][2]);
  }
  ASSERT_TRUE(a.monitor.judged() && b.monitor.judged() && c.monitor.judged());
  EXPECT_EQ(b.sink.to_first, 1);
  EXPECT_EQ(c.sink.to_first, 1);
  EXPECT_EQ(b.sink.sent.size(), 1u);
  EXPECT_EQ(c.sink.sent.size(), 1u);
  ASSERT_EQ(a.sink.sent.size(), 1u);  // the verdict, and nothing else
  const HangMessage verdict = *HangMessage::Parse(a.sink.sent[0]);
  EXPECT_EQ(verdict.kind, HangMessage::Kind::kVerdict);
  EXPECT_TRUE(verdict.views.empty());
  const std::optional<HangVerdict> va = a.monitor.TakeVerdict();
  const std::optional<HangVerdict> vb = b.monitor.TakeVerdict();
  const std::optional<HangVerdict> vc = c.monitor.TakeVerdict();
  ASSERT_TRUE(va && vb && vc);
  EXPECT_EQ(va->lines, vb->lines);
  EXPECT_EQ(va->lines, vc->lines);
  EXPECT_NE(va->lines.front().find("rank 5"), std::string::npos) << va->lines.front();
  EXPECT_EQ(b.sink.infos.back(), "agent 0 on n1 judged the job hung");
}

TEST(HangMonitor, TheLimitFollowsThePhase) {
  HangWatch watch(Options(), 0, 0, "n1");
  FakeProbe probe;
  watch.Add(0, {0, 0, 100, "hb", "log"}, 0);
  probe.Advance(0, 0, "init");
  watch.Sample(probe, 1, 1e9);
  EXPECT_EQ(watch.Limit(1), 20);  // setting up the process group
  probe.Advance(0, 0, "forward");
  watch.Sample(probe, 1, 1e9);
  EXPECT_EQ(watch.Limit(1), 30);  // no step done yet: the first-step limit
  probe.Advance(0, 1, "forward");
  watch.Sample(probe, 2, 1e9);
  EXPECT_EQ(watch.Limit(2), 10);
  probe.Advance(0, 1, "checkpoint");
  watch.Sample(probe, 3, 1e9);
  EXPECT_EQ(watch.Limit(3), 60);
  EXPECT_EQ(watch.Stall(7), 4);
  watch.Ended(0, "exited with code 0", 8);
  EXPECT_EQ(watch.Limit(9), 10);  // a node whose workers have ended waits with the others
  EXPECT_EQ(watch.Stall(9), 1);
}

TEST(HangMonitor, WithoutAHeartbeatOutputAndCpuCountAsProgress) {
  HangWatch watch(Options(), 0, 0, "n1");
  FakeProbe probe;
  watch.Add(0, {0, 0, 100, "", "log"}, 0);
  probe.seen[0].proc = ProcSample{'S', 1.0, "futex_wait_queue"};
  probe.seen[0].output_unix = 1e9;
  watch.Sample(probe, 1, 1e9 + 1);
  watch.Sample(probe, 2, 1e9 + 2);
  EXPECT_EQ(watch.Stall(5), 5);         // nothing moved since the start
  probe.seen[0].output_unix = 1e9 + 3;  // a line of output
  watch.Sample(probe, 3, 1e9 + 3);
  EXPECT_EQ(watch.Stall(5), 2);
  probe.seen[0].proc->cpu_s = 2.0;  // a second of CPU in a second: busy
  watch.Sample(probe, 4, 1e9 + 4);
  EXPECT_EQ(watch.Stall(5), 1);
  EXPECT_FALSE(watch.Views(5)[0].published);
}

TEST(HangMonitor, TheProgressFileHasEveryRank) {
  Agent a(0, 0);
  a.Tick(0);
  EXPECT_NE(a.sink.progress.find("\"agent\":0,\"host\":\"n1\",\"node\":0,\"state\":\"running\""),
            std::string::npos)
      << a.sink.progress;
  EXPECT_NE(a.sink.progress.find("\"rank\":1,"), std::string::npos);
}

}  // namespace
}  // namespace runner
