using System.CommandLine;
using System.Diagnostics;
using Lab.Load;
using Lab.Topologies;

namespace Lab.Cli;

/// <summary>
/// Wire with <c>root.Subcommands.Add(Lab.Cli.SoakCommand.Create())</c>.
/// <c>lab soak --seconds N</c>: churns connections through every topology in turn, keep-alive and close, for N
/// seconds, with the client and the servers in this process; checks that no request was lost and that this
/// process's memory and open fds stay flat from the first to the last 10% of the run.
/// </summary>
public static class SoakCommand
{
    public static Command Create()
    {
        var seconds = new Option<double>("--seconds", "-s") { Description = "How long to run, 10 to 3600 s. Defaults to 600 (bench/soak); CI runs 30.", DefaultValueFactory = _ => 600 };
        var connections = new Option<int>("--connections", "-c") { Description = "Client connections in each slice, 1 to 256. Defaults to 8.", DefaultValueFactory = _ => 8 };
        var command = new Command("soak", "Churn connections through every topology for a while; fail if a request is lost or memory or fds grow.")
        {
            seconds, connections,
        };
        command.SetAction((parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var s = parse.GetValue(seconds);
            var c = parse.GetValue(connections);
            if (s is < 10 or > 3600 || double.IsNaN(s)) { parse.InvocationConfiguration.Error.WriteLine($"lab soak: --seconds {s}: give 10 to 3600"); return Task.FromResult(2); }
            if (c is < 1 or > 256) { parse.InvocationConfiguration.Error.WriteLine($"lab soak: --connections {c}: give 1 to 256"); return Task.FromResult(2); }
            using var ctrlC = new CtrlC(ct);
            var verdict = Soak.Run(TimeSpan.FromSeconds(s), c, output.WriteLine, ctrlC.Token);
            output.WriteLine(verdict.ToString());
            return Task.FromResult(verdict.Passed ? 0 : 1);
        });
        return command;
    }
}

/// <summary>One reading of this process between two slices, with no topology running and garbage collected.</summary>
public readonly record struct SoakSample(TimeSpan At, long RssBytes, long HeapBytes, int Fds);

/// <summary>What a soak found.</summary>
public sealed record SoakVerdict(TimeSpan Elapsed, int Slices, long Sent, long Received, LoadErrors Errors, long Cut, long ServerServed,
    IReadOnlyList<SoakSample> Samples, IReadOnlyList<string> Failures)
{
    /// <summary>RSS may grow by this fraction from the first 10% to the last (or <see cref="RssSlackBytes"/>, the larger).</summary>
    public const double RssSlack = 0.25;
    public const long RssSlackBytes = 32L << 20;
    /// <summary>The GC heap after a full collection may grow by this fraction (or <see cref="HeapSlackBytes"/>, the larger).</summary>
    public const double HeapSlack = 0.25;
    public const long HeapSlackBytes = 8L << 20;
    /// <summary>Open fds between slices may grow by this many.</summary>
    public const int FdSlack = 4;

    /// <summary>
    /// Requests written and then neither answered, failed, nor in flight when their slice ended. Must be 0. "In flight"
    /// is the generator's Unfinished: issued and not finished, which includes requests issued on a connection still in
    /// its handshake and not yet written, so received + errors + in flight may exceed sent (the 10-minute run: by 31).
    /// </summary>
    public long Lost => Math.Max(0, Sent - Received - Errors.Total - Cut);

    /// <summary>(first 10%, last 10%) medians of a reading over the between-slice samples.</summary>
    public (double First, double Last) Window(Func<SoakSample, double> f)
    {
        int n = Math.Max(1, Samples.Count / 10);
        static double Median(IEnumerable<double> xs) { var a = xs.Order().ToArray(); return a.Length == 0 ? 0 : a[a.Length / 2]; }
        return (Median(Samples.Take(n).Select(f)), Median(Samples.Skip(Samples.Count - n).Select(f)));
    }

    public IReadOnlyList<string> Problems
    {
        get
        {
            var p = new List<string>(Failures);
            if (Lost != 0) p.Add($"{Lost:N0} requests unaccounted for (sent {Sent:N0}, received {Received:N0}, errors {Errors.Total:N0}, cut at a slice's end {Cut:N0})");
            if (ServerServed < Received) p.Add($"the client counted {Received:N0} answers but the servers served {ServerServed:N0}");
            if (ServerServed > Received + Errors.Total + Cut) p.Add($"the servers served {ServerServed:N0} requests; the client received {Received:N0} and lost sight of only {Errors.Total + Cut:N0}");
            if (Samples.Count >= 2)
            {
                var rss = Window(x => x.RssBytes);
                if (rss.Last > Math.Max(rss.First * (1 + RssSlack), rss.First + RssSlackBytes)) p.Add($"RSS grew from {Mb(rss.First)} to {Mb(rss.Last)}");
                var heap = Window(x => x.HeapBytes);
                if (heap.Last > Math.Max(heap.First * (1 + HeapSlack), heap.First + HeapSlackBytes)) p.Add($"the GC heap grew from {Mb(heap.First)} to {Mb(heap.Last)}");
                var fds = Window(x => x.Fds);
                if (fds.Last > fds.First + FdSlack) p.Add($"open fds grew from {fds.First:0} to {fds.Last:0}");
            }
            else p.Add("fewer than two slices ran: nothing to compare");
            return p;
        }
    }

    public bool Passed => Problems.Count == 0;

    static string Mb(double bytes) => $"{bytes / (1 << 20):0.0} MB";

    public override string ToString()
    {
        var rss = Window(x => x.RssBytes);
        var heap = Window(x => x.HeapBytes);
        var fds = Window(x => x.Fds);
        var rows = new (string What, string Value, string Rule, bool Ok)[]
        {
            ("requests sent", $"{Sent:N0}", "", true),
            ("responses received (2xx)", $"{Received:N0}", "", true),
            ("errors", Errors.Total == 0 ? "0" : $"{Errors.Total:N0} ({Errors})", "counted", true),
            ("in flight at a slice's end (issued, some not yet written)", $"{Cut:N0}", "at most the connections per slice", true),
            ("lost: sent beyond received + errors + in flight", $"{Lost:N0}", "0", Lost == 0),
            ("served by the servers", $"{ServerServed:N0}", "received ≤ served ≤ received + errors + in flight", ServerServed >= Received && ServerServed <= Received + Errors.Total + Cut),
            ("RSS, first 10% → last 10%", $"{Mb(rss.First)} → {Mb(rss.Last)}", $"+{RssSlack:P0} or +{Mb(RssSlackBytes)}", rss.Last <= Math.Max(rss.First * (1 + RssSlack), rss.First + RssSlackBytes)),
            ("GC heap after a collection", $"{Mb(heap.First)} → {Mb(heap.Last)}", $"+{HeapSlack:P0} or +{Mb(HeapSlackBytes)}", heap.Last <= Math.Max(heap.First * (1 + HeapSlack), heap.First + HeapSlackBytes)),
            ("open fds between slices", $"{fds.First:0} → {fds.Last:0}", $"+{FdSlack}", fds.Last <= fds.First + FdSlack),
        };
        var w0 = rows.Max(r => r.What.Length);
        var w1 = rows.Max(r => r.Value.Length);
        var w2 = rows.Max(r => r.Rule.Length);
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"soak: {Elapsed.TotalSeconds:0} s, {Slices} slices over {TopologyCatalog.All.Count} topologies (keep-alive and close), {Samples.Count} readings between slices");
        sb.AppendLine($"  {"".PadRight(w0)}  {"value".PadRight(w1)}  {"holds if".PadRight(w2)}  verdict");
        foreach (var r in rows) sb.AppendLine($"  {r.What.PadRight(w0)}  {r.Value.PadRight(w1)}  {r.Rule.PadRight(w2)}  {(r.Ok ? "ok" : "FAILED")}");
        foreach (var f in Failures) sb.AppendLine("  failure: " + f);
        sb.Append(Passed ? "soak: passed" : "soak: FAILED: " + string.Join("; ", Problems));
        return sb.ToString();
    }
}

/// <summary>The soak itself: slices of load, one topology and one connection mode each, readings in between.</summary>
public static class Soak
{
    /// <summary>
    /// Runs slices of <c>clamp(duration / 18, 1 s, 10 s)</c>: slice k loads topology k mod 9 with keep-alive when
    /// (k / 9) is even, else a new connection per request, so each topology sees both modes whenever the run has
    /// 18 slices or more. The mix is mostly "/" with 1% /work?ms=1 and 1% /sleep?ms=2. Between slices, with nothing
    /// running, garbage is collected and RSS (VmRSS), the GC heap and the open fds are read; the first 10% and the
    /// last 10% of those readings are compared by their medians.
    /// </summary>
    public static SoakVerdict Run(TimeSpan duration, int connections, Action<string> print, CancellationToken ct = default)
    {
        var topologies = TopologyCatalog.All;
        var slice = TimeSpan.FromSeconds(Math.Clamp(duration.TotalSeconds / (2 * topologies.Count), 1, 10));
        var mix = new[] { RequestMix.Hello(98), RequestMix.Work(1, 1), RequestMix.Sleep(2, 1) };
        var samples = new List<SoakSample>();
        var failures = new List<string>();
        long sent = 0, received = 0, cut = 0, served = 0;
        long[] errors = new long[6];
        var clock = Stopwatch.StartNew();
        // No reading before the first slice: the runtime opens a few fds and grows its heap once, on first use
        // (a 10 s run read 63 fds before any slice, 75 after the first, then 77 for every slice after).
        int k = 0;
        while (clock.Elapsed + slice <= duration + TimeSpan.FromSeconds(0.5) && !ct.IsCancellationRequested)
        {
            var (label, create) = topologies[k % topologies.Count];
            bool keepAlive = (k / topologies.Count) % 2 == 0;
            var server = create(new TopologyOptions { Workers = 2, RequestEvents = false });
            LoadResult? r = null;
            try
            {
                server.Start();
                r = LoadGenerator.Run(new LoadOptions
                {
                    Target = $"127.0.0.1:{server.Port}", Connections = connections, Duration = slice, KeepAlive = keepAlive, Mix = mix,
                }, ct: ct);
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { failures.Add($"slice {k + 1} ({label}): {e.GetType().Name}: {e.Message}"); }
            finally
            {
                var stop = server.Stop(TimeSpan.FromSeconds(5));
                if (!stop.Stopped) failures.Add($"slice {k + 1} ({label}): {stop}");
                foreach (var f in server.Failures) failures.Add($"slice {k + 1} ({label}): {f}");
            }
            if (r is not null)
            {
                sent += r.Sent; received += r.Completed; cut += r.Unfinished;
                served += server.Metrics.RequestsServed;
                var e = r.Errors;
                errors[0] += e.Refused; errors[1] += e.Reset; errors[2] += e.Timeout; errors[3] += e.BadResponse; errors[4] += e.Closed; errors[5] += e.Other;
                if (r.Unfinished > connections) failures.Add($"slice {k + 1} ({label}): {r.Unfinished} requests in flight at its end, more than its {connections} connections");
            }
            var now = Sample(clock);
            samples.Add(now);
            k++;
            if (r is not null)
                print($"[{clock.Elapsed.TotalSeconds,5:0}s] {k,3} {label,-37} {(keepAlive ? "keep-alive" : "close     ")} {r.Completed,9:N0} ok {r.Errors.Total,4:N0} err {r.Unfinished,3} cut   " +
                      $"rss {now.RssBytes / (1 << 20),4} MB  heap {now.HeapBytes / (1 << 20),4} MB  fds {now.Fds,4}");
        }
        if (ct.IsCancellationRequested) failures.Add("cancelled before the end");
        return new SoakVerdict(clock.Elapsed, k, sent, received, new LoadErrors(errors[0], errors[1], errors[2], errors[3], errors[4], errors[5]), cut, served, samples, failures);
    }

    static SoakSample Sample(Stopwatch clock)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long rss = 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) { rss = long.Parse(line[6..].Trim().Split(' ')[0]) * 1024; break; }
        return new SoakSample(clock.Elapsed, rss, GC.GetTotalMemory(false), Directory.GetFiles("/proc/self/fd").Length);
    }
}
