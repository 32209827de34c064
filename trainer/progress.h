#pragma once
// What rank 0 tells people while training: train.log (timestamped progress lines, the file to
// `tail -f`), metrics.jsonl (the same numbers for programs), and at the end loss.svg, a loss
// curve for those who would rather look than read. Lines also go to stdout (the rank's log).

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace trainer {

class Progress {
 public:
  // dir "": stdout only. Throws common::EnvironmentError when the files cannot be opened.
  explicit Progress(const std::string& dir);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Line(const std::string& text);     // train.log + stdout
  void Metrics(const std::string& json);  // one line of metrics.jsonl

 private:
  FILE* log_ = nullptr;
  FILE* metrics_ = nullptr;
};

// "1h02m", "4m05s", "12s".
[[nodiscard]] std::string FormatDuration(double seconds);

struct CurvePoint {
  double step;
  double value;
};

// Round axis ticks from 0 to at least `max` (a non-positive or non-finite max counts as 1): the
// smallest step of 1, 2 or 5 times a power of ten that reaches `max` in at most `max_intervals`
// intervals (2808 in 6: 0, 500, ..., 3000). The last tick is where the axis ends; `decimals` is
// what a label needs (0 for 500, 1 for 0.2, 2 for 0.05).
struct AxisTicks {
  double step = 0;
  std::vector<double> values;
  int decimals = 0;
};
[[nodiscard]] AxisTicks NiceTicks(double max, int max_intervals);
// `value` with `decimals` decimals ("1500", "0.4").
[[nodiscard]] std::string FormatTick(double value, int decimals);

// An SVG line chart of training loss (and test accuracy on a second axis when given), every
// label inside its width and height, the loss and step axes with round ticks (NiceTicks).
[[nodiscard]] std::string LossCurveSvg(const std::vector<CurvePoint>& loss,
                                       const std::vector<CurvePoint>& accuracy,
                                       const std::string& title);

}  // namespace trainer
