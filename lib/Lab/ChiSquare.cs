namespace Lab;

/// <summary>
/// Pearson's chi-square test of counts against an even spread: is a spread (connections over SO_REUSEPORT shards,
/// over threads) what chance gives, or a bias? A check that states an even spread is a statistical claim; this is the
/// test for it, with the bound it fails beyond stated as a probability.
/// </summary>
public static class ChiSquare
{
    /// <summary>Σ (observed − expected)² / expected, with every category expecting the same share of the total.</summary>
    public static double Statistic(IReadOnlyList<long> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Count < 2) throw new ArgumentException("Give at least two categories.", nameof(counts));
        if (counts.Any(c => c < 0)) throw new ArgumentException("Counts cannot be negative.", nameof(counts));
        long total = counts.Sum();
        if (total == 0) throw new ArgumentException("The counts are all 0: nothing to test.", nameof(counts));
        double expected = (double)total / counts.Count;
        return counts.Sum(c => (c - expected) * (c - expected) / expected);
    }

    /// <summary>
    /// The value a chi-square statistic with <paramref name="degreesOfFreedom"/> exceeds with probability
    /// <paramref name="p"/> when the spread is fair (for 3 degrees of freedom and p = 0.001: 16.27). Computed from the
    /// chi-square distribution itself (the regularized incomplete gamma function), not from a table.
    /// </summary>
    public static double Critical(int degreesOfFreedom, double p = 0.001)
    {
        if (degreesOfFreedom < 1) throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "At least 1 degree of freedom.");
        if (p is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(p), p, "A probability between 0 and 1.");
        // UpperTail falls as x grows: bisect until it equals p.
        double lo = 0, hi = degreesOfFreedom + 10;
        while (UpperTail(hi, degreesOfFreedom) > p) hi *= 2;
        for (int i = 0; i < 200 && hi - lo > 1e-9; i++)
        {
            double mid = (lo + hi) / 2;
            if (UpperTail(mid, degreesOfFreedom) > p) lo = mid; else hi = mid;
        }
        return (lo + hi) / 2;
    }

    /// <summary>P(X ≥ <paramref name="x"/>) for X chi-square distributed with <paramref name="degreesOfFreedom"/>: the
    /// p-value of a statistic.</summary>
    public static double UpperTail(double x, int degreesOfFreedom)
    {
        if (x <= 0) return 1;
        return RegularizedGammaQ(degreesOfFreedom / 2.0, x / 2);
    }

    // Q(a, x) = Γ(a, x) / Γ(a): a power series below a + 1, a continued fraction (modified Lentz) above.
    static double RegularizedGammaQ(double a, double x)
    {
        double lnGammaA = LogGamma(a);
        if (x < a + 1)
        {
            double term = 1 / a, sum = term;
            for (int n = 1; n < 1000; n++)
            {
                term *= x / (a + n);
                sum += term;
                if (Math.Abs(term) < Math.Abs(sum) * 1e-15) break;
            }
            return 1 - sum * Math.Exp(-x + a * Math.Log(x) - lnGammaA);
        }
        const double tiny = 1e-300;
        double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
        for (int i = 1; i < 1000; i++)
        {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b; if (Math.Abs(d) < tiny) d = tiny;
            c = b + an / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-15) break;
        }
        return Math.Exp(-x + a * Math.Log(x) - lnGammaA) * h;
    }

    // Lanczos approximation (g = 7, 9 coefficients), accurate to about 15 digits for a > 0.
    static double LogGamma(double a)
    {
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (a < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * a))) - LogGamma(1 - a);
        a -= 1;
        double s = g[0];
        for (int i = 1; i < g.Length; i++) s += g[i] / (a + i);
        double t = a + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (a + 0.5) * Math.Log(t) - t + Math.Log(s);
    }
}
