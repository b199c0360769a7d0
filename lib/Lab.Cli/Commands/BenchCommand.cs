using System.CommandLine;
using Lab.Bench;

namespace Lab.Cli.Commands;

/// <summary>
/// <c>lab bench</c>: the lab against nginx and wrk on loopback (see <see cref="Benchmark"/>). Writes latest.md and
/// latest.json to bench/results (the full run) or artifacts/bench (<c>--short</c>, so CI leaves the repository clean).
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var shortRun = new Option<bool>("--short") { Description = "The CI form: 1 round of 1 s per side, no warm-up; writes to artifacts/bench/." };
        var rounds = new Option<int?>("--rounds") { Description = "Rounds of A B per pair (default 5; 1 with --short)." };
        var seconds = new Option<int?>("--seconds") { Description = "Seconds per side per round (default 2; 1 with --short)." };
        var only = new Option<string?>("--only") { Description = "Only topologies whose label contains this, e.g. RequestDispatch or EpollExclusive." };
        var parts = new Option<string?>("--parts") { Description = "Comma-separated: throughput, loadgenerator, latency, sampler (default all)." };
        var workers = new Option<string?>("--workers") { Description = "Comma-separated worker counts to pair at, e.g. 1,2,4 (default 1,2)." };
        var output = new Option<string?>("--out") { Description = "Directory for latest.md and latest.json (default bench/results, or artifacts/bench with --short)." };

        var command = new Command("bench", "Measure every topology against nginx (same workers, reuseport and accept_mutex), the lab's load generator against wrk, p99 at half nginx's peak, and the sampler's cost.")
        {
            shortRun, rounds, seconds, only, parts, workers, output,
        };
        command.SetAction((parse, ct) =>
        {
            var o = parse.InvocationConfiguration.Output;
            var e = parse.InvocationConfiguration.Error;
            bool isShort = parse.GetValue(shortRun);
            var options = isShort ? BenchOptions.Short : new BenchOptions();
            try
            {
                if (parse.GetValue(rounds) is int r) options = options with { Rounds = r };
                if (parse.GetValue(seconds) is int s) options = options with { Seconds = TimeSpan.FromSeconds(s) };
                options = options with { Only = parse.GetValue(only) };
                if (parse.GetValue(parts) is string p) options = options with { Parts = ParseParts(p) };
                if (parse.GetValue(workers) is string w) options = options with { Workers = ParseWorkers(w) };
            }
            catch (ArgumentException x) { e.WriteLine($"lab bench: {x.Message}"); return Task.FromResult(2); }

            var root = Repo.Root();
            var dir = parse.GetValue(output) ?? Path.Combine(root, isShort ? "artifacts/bench" : "bench/results");
            o.WriteLine($"lab bench: {options.Rounds} round(s) x {options.Seconds.TotalSeconds:0} s per side, load average {File.ReadAllText("/proc/loadavg").Trim()}");
            BenchReport report;
            try
            {
                using var ctrlC = new CtrlC(ct);
                report = Benchmark.Run(options, line => { lock (o) o.WriteLine(line); }, ctrlC.Token);
            }
            catch (ArgumentException x) { e.WriteLine($"lab bench: {x.Message}"); return Task.FromResult(2); }
            catch (Lab.Hosts.LabSetupException x) { e.WriteLine($"lab bench: {x.Message}"); return Task.FromResult(3); }
            catch (OperationCanceledException) { e.WriteLine("lab bench: stopped."); return Task.FromResult(130); }
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "latest.md"), report.ToMarkdown());
            File.WriteAllText(Path.Combine(dir, "latest.json"), report.ToJson());
            o.WriteLine();
            o.Write(report.ToMarkdown());
            o.WriteLine($"lab bench: wrote {Path.Combine(dir, "latest.md")} and latest.json; {report.Rows.Count(x => !x.Met)} of {report.Rows.Count} targets missed.");
            return Task.FromResult(0);
        });
        return command;
    }

    static int[] ParseWorkers(string text)
    {
        var counts = new List<int>();
        foreach (var w in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(w, out int n) || n is < 1 or > Lab.Topologies.TopologyOptions.MaxWorkers)
                throw new ArgumentException($"--workers: '{w}' is not a worker count from 1 to {Lab.Topologies.TopologyOptions.MaxWorkers}; give them comma-separated, e.g. 1,2,4.");
            if (!counts.Contains(n)) counts.Add(n);
        }
        if (counts.Count == 0) throw new ArgumentException("--workers: no worker count given; give them comma-separated, e.g. 1,2,4.");
        return counts.ToArray();
    }

    static BenchParts ParseParts(string text)
    {
        BenchParts parts = 0;
        foreach (var p in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            parts |= p.Replace("-", "").ToLowerInvariant() switch
            {
                "throughput" => BenchParts.Throughput,
                "loadgenerator" or "load" => BenchParts.LoadGenerator,
                "latency" or "p99" => BenchParts.Latency,
                "sampler" => BenchParts.Sampler,
                _ => throw new ArgumentException($"--parts: '{p}' is not one of throughput, loadgenerator, latency, sampler."),
            };
        return parts == 0 ? BenchParts.All : parts;
    }
}
