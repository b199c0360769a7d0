namespace Lab.Tests;

public class ChiSquareTests
{
    [Theory]   // the chi-square table's values at p = 0.001 and p = 0.05
    [InlineData(1, 0.001, 10.828)]
    [InlineData(2, 0.001, 13.816)]
    [InlineData(3, 0.001, 16.266)]
    [InlineData(7, 0.001, 24.322)]
    [InlineData(15, 0.001, 37.697)]
    [InlineData(3, 0.05, 7.8147)]
    public void CriticalValuesMatchTheTable(int df, double p, double table) =>
        Assert.InRange(ChiSquare.Critical(df, p), table - 0.001, table + 0.001);

    [Fact]
    public void AnEvenSpreadScoresZeroAndTheIssuesBiasedSplitScoresFar()
    {
        Assert.Equal(0, ChiSquare.Statistic(new long[] { 250, 250, 250, 250 }));
        // Issue 17: a 30/30/20/20 split of 1,000 connections gives 40, far above 16.3; the old check (15-35 %) passed it.
        Assert.Equal(40, ChiSquare.Statistic(new long[] { 300, 300, 200, 200 }), 6);
        Assert.True(ChiSquare.UpperTail(40, 3) < 1e-7);
        Assert.Equal(0.001, ChiSquare.UpperTail(16.266, 3), 4);
    }

    [Fact]
    public void AFairDieRollsUnderTheBoundAlmostAlways()
    {
        // 1,000 simulated fair spreads of 1,200 over 4: at p = 0.001, about one exceeds the bound; more than 6 would mean
        // the bound is wrong (P < 1e-4 for Binomial(1000, 0.001)). Seeded: the same draws every run.
        var rng = new Random(17);
        var bound = ChiSquare.Critical(3);
        int over = 0;
        for (int run = 0; run < 1000; run++)
        {
            var counts = new long[4];
            for (int i = 0; i < 1200; i++) counts[rng.Next(4)]++;
            if (ChiSquare.Statistic(counts) > bound) over++;
        }
        Assert.InRange(over, 0, 6);
    }

    [Fact]
    public void BadInputIsNamed()
    {
        Assert.Throws<ArgumentException>(() => ChiSquare.Statistic(new long[] { 5 }));
        Assert.Throws<ArgumentException>(() => ChiSquare.Statistic(new long[] { 0, 0 }));
        Assert.Throws<ArgumentException>(() => ChiSquare.Statistic(new long[] { 3, -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChiSquare.Critical(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChiSquare.Critical(3, 1.5));
    }
}
