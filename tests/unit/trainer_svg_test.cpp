// loss.svg (trainer/progress.h): round axis ticks (1-2-5 steps) as a table, and every label of
// the chart inside its width: the right-hand "test accuracy" label once went past the edge, and
// the step axis read 0, 702, 1404, 2106, 2808.

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include "trainer/progress.h"

namespace trainer {
namespace {

TEST(LossCurveTest, TicksAreRoundOneTwoFiveSteps) {
  struct Case {
    double max;
    int intervals;
    double step;
    double end;
    int decimals;
  };
  const std::vector<Case> cases = {
      {2808, 6, 500, 3000, 0},  {2808, 4, 1000, 3000, 0}, {100, 6, 20, 100, 0},
      {101, 6, 20, 120, 0},     {7, 6, 2, 8, 0},          {6, 6, 1, 6, 0},
      {1, 6, 0.2, 1, 1},        {2.3, 5, 0.5, 2.5, 1},    {0.26, 5, 0.1, 0.3, 1},
      {0.07, 5, 0.02, 0.08, 2}, {1e6, 6, 200000, 1e6, 0}, {0, 5, 0.2, 1, 1},
      {-3, 5, 0.2, 1, 1},       {NAN, 5, 0.2, 1, 1},      {INFINITY, 5, 0.2, 1, 1},
  };
  for (const Case& c : cases) {
    const AxisTicks ticks = NiceTicks(c.max, c.intervals);
    EXPECT_DOUBLE_EQ(ticks.step, c.step) << c.max;
    ASSERT_FALSE(ticks.values.empty()) << c.max;
    EXPECT_DOUBLE_EQ(ticks.values.front(), 0) << c.max;
    EXPECT_NEAR(ticks.values.back(), c.end, 1e-9 * c.end) << c.max;
    EXPECT_LE(static_cast<int>(ticks.values.size()) - 1, c.intervals) << c.max;
    EXPECT_EQ(ticks.decimals, c.decimals) << c.max;
  }
  EXPECT_EQ(FormatTick(1500, 0), "1500");
  EXPECT_EQ(FormatTick(0.2 * 3, 1), "0.6");
  EXPECT_EQ(FormatTick(0.02 * 3, 2), "0.06");
}

TEST(LossCurveTest, EveryLabelIsInsideTheWidthAndTheStepTicksAreRound) {
  std::vector<CurvePoint> loss;
  std::vector<CurvePoint> accuracy;
  for (int step = 0; step <= 2808; step += 52)
    loss.push_back({double(step), 2.3 / (1 + step / 300.0)});
  for (int epoch = 1; epoch <= 4; ++epoch) accuracy.push_back({702.0 * epoch, 0.6 + 0.08 * epoch});
  const std::string svg = LossCurveSvg(loss, accuracy, "mlp on mnist, 4 ranks");
  const std::regex size("<svg [^>]*width=\"([0-9.]+)\" height=\"([0-9.]+)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, size)) << svg;
  const double width = std::stod(m[1]);
  EXPECT_NE(svg.find("viewBox=\"0 0 " + std::string(m[1]) + " " + std::string(m[2]) + "\""),
            std::string::npos);
  const std::regex text("<text x=\"([-0-9.]+)\" y=\"[-0-9.]+\"([^>]*)>([^<]*)</text>");
  int texts = 0;
  std::vector<std::string> step_labels;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), text); it != std::sregex_iterator();
       ++it) {
    ++texts;
    const double x = std::stod((*it)[1]);
    const std::string attributes = (*it)[2];
    const std::string label = (*it)[3];
    EXPECT_GE(x, 0) << label;
    EXPECT_LE(x, width) << label;
    // Labels turned a quarter: 12 px glyphs rise to the left of x (rotate -90) or to its right
    // (rotate 90); either way they must fit.
    if (attributes.find("rotate(90") != std::string::npos) {
      EXPECT_LE(x + 12, width) << label;
    }
    if (attributes.find("rotate(-90") != std::string::npos) {
      EXPECT_GE(x - 12, 0) << label;
      EXPECT_LE(x + 4, width) << label;
    }
    if (attributes.find("text-anchor=\"middle\"") != std::string::npos &&
        attributes.find("fill") == std::string::npos &&
        label.find_first_not_of("0123456789") == std::string::npos) {
      step_labels.push_back(label);
    }
  }
  EXPECT_GT(texts, 10);
  EXPECT_EQ(step_labels,
            (std::vector<std::string>{"0", "500", "1000", "1500", "2000", "2500", "3000"}));
  EXPECT_NE(svg.find(">test accuracy</text>"), std::string::npos);
  EXPECT_NE(svg.find(">2.5</text>"), std::string::npos) << "the loss axis ends at a round 2.5";
}

}  // namespace
}  // namespace trainer
