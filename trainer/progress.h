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

// An SVG line chart of training loss (and test accuracy on a second axis when given).
[[nodiscard]] std::string LossCurveSvg(const std::vector<CurvePoint>& loss,
                                       const std::vector<CurvePoint>& accuracy,
                                       const std::string& title);

}  // namespace trainer
