using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Lab.Load;
using Lab.Observe;
using Lab.Topologies;

namespace Lab.Bench;

/// <summary>
/// Two readings of this process between two slices, with no topology running: <see cref="Held"/> after a full
/// collection (what the process keeps: the GC holds freed regions committed for reuse), and <see cref="Live"/> after an
/// aggressive one and malloc_trim (what it still uses). <see cref="Connections"/> and <see cref="Requests"/> count from
/// the start of the run; <see cref="Topology"/> and <see cref="KeepAlive"/> say what the slice before the reading ran.
/// </summary>
public readonly record struct SoakSample(TimeSpan At, string Topology, bool KeepAlive, long Connections, long Requests, ProcessMemory Held, ProcessMemory Live);

/// <summary>What a soak found, and the rules it is judged by.</summary>
public sealed record SoakVerdict(TimeSpan Elapsed, int Slices, long Sent, long Received, LoadErrors Errors, long Cut, long ServerServed,
    IReadOnlyList<SoakSample> Samples, IReadOnlyList<string> Failures)
{
    /// <summary>
    /// Live RSS (after an aggressive collection and malloc_trim) may grow by this much over the second half of the run,
    /// as fitted by least squares. The 10-minute run of 2026-12-05 moved by under 2 MB over its second half; a leak of
    /// 1 KB per connection adds about 40 MB per close slice here, whose second half has 10 such slices or more.
    /// </summary>
    public const long LiveSlackBytes = 8L << 20;
    /// <summary>The GC heap after an aggressive collection may grow by this much over the second half.</summary>
    public const long HeapSlackBytes = 4L << 20;
    /// <summary>Open fds between slices may grow by this many from the first 10% of the readings to the last.</summary>
    public const int FdSlack = 4;

    /// <summary>
    /// Requests written and then neither answered, failed, nor in flight when their slice ended. Must be 0. "In flight"
    /// is the generator's Unfinished: issued and not finished, which includes requests issued on a connection still in
    /// its handshake and not yet written, so received + errors + in flight may exceed sent (the 10-minute run: by 31).
    /// </summary>
    public long Lost => Math.Max(0, Sent - Received - Errors.Total - Cut);

    /// <summary>The readings of the run's second half: a plateau the runtime reaches early is behind them.</summary>
    public IReadOnlyList<SoakSample> SecondHalf => Samples.Skip(Samples.Count / 2).ToList();

    /// <summary>
    /// How much a reading grew over the second half: the least-squares slope against time, times the half's span
    /// (robust to one reading's noise, where last minus first is not), and that growth per connection opened in it.
    /// </summary>
    public (double Growth, double PerConnection) Trend(Func<SoakSample, double> f)
    {
        var h = SecondHalf;
        if (h.Count < 2) return (0, 0);
        var xs = h.Select(s => s.At.TotalSeconds).ToArray();
        var ys = h.Select(f).ToArray();
        double mx = xs.Average(), my = ys.Average(), sxy = 0, sxx = 0;
        for (int i = 0; i < xs.Length; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) * (xs[i] - mx); }
        double growth = sxx == 0 ? 0 : sxy / sxx * (xs[^1] - xs[0]);
        long conns = h[^1].Connections - h[0].Connections;
        return (growth, conns > 0 ? growth / conns : 0);
    }

    /// <summary>(first 10%, last 10%) medians of a reading over the between-slice samples.</summary>
    public (double First, double Last) Window(Func<SoakSample, double> f)
    {
        int n = Math.Max(1, Samples.Count / 10);
        static double Median(IEnumerable<double> xs) => xs.Any() ? Stats.Median(xs) : 0;
        return (Median(Samples.Take(n).Select(f)), Median(Samples.Skip(Samples.Count - n).Select(f)));
    }

    /// <summary>Every rule broken, each in a sentence with its figures. Empty when the soak passed.</summary>
    public IReadOnlyList<string> Problems => [.. Failures, .. Rows.Where(r => !r.Ok).Select(r => $"{r.What}: {r.Value} (holds if {r.Rule})")];

    public bool Passed => Problems.Count == 0;

    /// <summary>The verdict's table: what was read, the rule, and whether it held. Rows with no rule only inform.</summary>
    public IReadOnlyList<(string What, string Value, string Rule, bool Ok)> Rows
    {
        get
        {
            var rows = new List<(string, string, string, bool)>
            {
                ("requests sent", $"{Sent:N0}", "", true),
                ("responses received (2xx)", $"{Received:N0}", "", true),
                ("errors", Errors.Total == 0 ? "0" : $"{Errors.Total:N0} ({Errors})", "counted", true),
                ("in flight at a slice's end (issued, some not yet written)", $"{Cut:N0}", "at most the connections per slice", true),
                ("lost: sent beyond received + errors + in flight", $"{Lost:N0}", "0", Lost == 0),
                ("served by the servers", $"{ServerServed:N0}", "received ≤ served ≤ received + errors + in flight",
                    ServerServed >= Received && ServerServed <= Received + Errors.Total + Cut),
            };
            if (Samples.Count < 4) { rows.Add(("readings between slices", $"{Samples.Count}", "at least 4, to have a second half to fit", false)); return rows; }
            var h = SecondHalf;
            var live = Trend(s => s.Live.Rss);
            var heap = Trend(s => s.Live.GcHeap);
            var held = Window(s => s.Held.Rss);
            var fds = Window(s => s.Held.Fds);
            rows.Add(("live RSS, second half (after aggressive GC + malloc_trim)",
                $"{Mb(h[0].Live.Rss)} → {Mb(h[^1].Live.Rss)}, fit {Signed(live.Growth)} ({live.PerConnection:0.#} B/connection)", $"fit ≤ +{Mb(LiveSlackBytes)}", live.Growth <= LiveSlackBytes));
            rows.Add(("GC heap, second half (after aggressive GC)", $"{Mb(h[0].Live.GcHeap)} → {Mb(h[^1].Live.GcHeap)}, fit {Signed(heap.Growth)}", $"fit ≤ +{Mb(HeapSlackBytes)}", heap.Growth <= HeapSlackBytes));
            rows.Add(("RSS as held (GC keeps freed regions), first 10% → last 10%", $"{Mb(held.First)} → {Mb(held.Last)}", "(not a leak signal: it plateaus)", true));
            rows.Add(("open fds between slices, first 10% → last 10%", $"{fds.First:0} → {fds.Last:0}", $"+{FdSlack}", fds.Last <= fds.First + FdSlack));
            return rows;
        }
    }

    static string Mb(double bytes) => $"{bytes / (1 << 20):0.0} MB";
    static string Signed(double bytes) => (bytes >= 0 ? "+" : "") + Mb(bytes);

    public override string ToString()
    {
        var rows = Rows;
        var w0 = rows.Max(r => r.What.Length);
        var w1 = rows.Max(r => r.Value.Length);
        var w2 = rows.Max(r => r.Rule.Length);
        var sb = new StringBuilder();
        sb.AppendLine($"soak: {Elapsed.TotalSeconds:0} s, {Slices} slices over {TopologyCatalog.All.Count} topologies (keep-alive and close), " +
                      $"{Samples.LastOrDefault().Connections:N0} connections, {Samples.Count} readings between slices");
        sb.AppendLine($"  {"".PadRight(w0)}  {"value".PadRight(w1)}  {"holds if".PadRight(w2)}  verdict");
        foreach (var r in rows) sb.AppendLine($"  {r.What.PadRight(w0)}  {r.Value.PadRight(w1)}  {r.Rule.PadRight(w2)}  {(r.Ok ? "ok" : "FAILED")}");
        foreach (var f in Failures) sb.AppendLine("  failure: " + f);
        sb.Append(Passed ? "soak: passed" : "soak: FAILED: " + string.Join("; ", Problems));
        return sb.ToString();
    }
}

/// <summary>Options of <see cref="Soak.Run"/>.</summary>
public sealed record SoakOptions
{
    /// <summary>How long to run. Defaults to 10 minutes (bench/soak); CI runs 30 s.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Client connections in each slice. Defaults to 8.</summary>
    public int Connections { get; init; } = 8;
    /// <summary>
    /// A deliberate native leak, to prove the verdict catches one: after each slice, this many bytes are malloc'd
    /// (and written, so they are resident) for every connection the slice's server accepted, and never freed.
    /// Defaults to 0.
    /// </summary>
    public int LeakPerConnection { get; init; }
    /// <summary>Also writes every reading to this CSV (a header, then a row per slice). Defaults to none.</summary>
    public TextWriter? Csv { get; init; }
    /// <summary>Also writes the memory curve (<see cref="SoakChart"/>) to this SVG file at the end. Defaults to none.</summary>
    public string? SvgPath { get; init; }
}

/// <summary>The soak itself: slices of load, one topology and one connection mode each, readings in between.</summary>
public static class Soak
{
    static readonly string[] Columns = ["rss", "anonymous", "gc_heap", "gc_committed", "malloc_in_use", "malloc_free", "malloc_arenas", "stacks", "threads", "fds"];

    /// <summary>
    /// Runs slices of <c>clamp(duration / 20, 1 s, 10 s)</c>: slice k loads topology k mod 10 with keep-alive when
    /// (k / 10) is even, else a new connection per request, so each topology sees both modes whenever the run has
    /// 20 slices or more. The mix is mostly "/" with 1% /work?ms=1 and 1% /sleep?ms=2. Between slices, with nothing
    /// running, this process is read twice (<see cref="SoakSample"/>). The verdict fits the live readings of the
    /// second half: the runtime's one-off growth (JIT, GC regions, malloc arenas) happens in the first slices.
    /// </summary>
    public static SoakVerdict Run(SoakOptions options, Action<string> print, CancellationToken ct = default)
    {
        var csv = options.Csv;
        csv?.WriteLine("seconds,slice,topology,mode,connections,requests," + string.Join(',', new[] { "held", "live" }.SelectMany(w => Columns.Select(c => $"{w}_{c}"))));
        var topologies = TopologyCatalog.All;
        var slice = TimeSpan.FromSeconds(Math.Clamp(options.Duration.TotalSeconds / (2 * topologies.Count), 1, 10));
        var mix = new[] { RequestMix.Hello(98), RequestMix.Work(1, 1), RequestMix.Sleep(2, 1) };
        var samples = new List<SoakSample>();
        var failures = new List<string>();
        var leaked = new List<nint>();
        long sent = 0, received = 0, cut = 0, served = 0, opened = 0;
        long[] errors = new long[6];
        var clock = Stopwatch.StartNew();
        // No reading before the first slice: the runtime opens a few fds and grows its heap once, on first use
        // (a 10 s run read 63 fds before any slice, 75 after the first, then 77 for every slice after).
        int k = 0;
        while (clock.Elapsed + slice <= options.Duration + TimeSpan.FromSeconds(0.5) && !ct.IsCancellationRequested)
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
                    Target = $"127.0.0.1:{server.Port}", Connections = options.Connections, Duration = slice, KeepAlive = keepAlive, Mix = mix,
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
                sent += r.Sent; received += r.Completed; cut += r.Unfinished; opened += r.ConnectionsOpened;
                served += server.Metrics.RequestsServed;
                var e = r.Errors;
                errors[0] += e.Refused; errors[1] += e.Reset; errors[2] += e.Timeout; errors[3] += e.BadResponse; errors[4] += e.Closed; errors[5] += e.Other;
                if (r.Unfinished > options.Connections) failures.Add($"slice {k + 1} ({label}): {r.Unfinished} requests in flight at its end, more than its {options.Connections} connections");
            }
            if (options.LeakPerConnection > 0) Leak(leaked, server.Metrics.ConnectionsAccepted, options.LeakPerConnection);
            var held = ProcessMemory.Read(Collect.Full);
            var now = new SoakSample(clock.Elapsed, label, keepAlive, opened, received, held, ProcessMemory.Read(Collect.Aggressive));
            samples.Add(now);
            k++;
            print($"[{clock.Elapsed.TotalSeconds,5:0}s] {k,3} {label,-37} {(keepAlive ? "keep-alive" : "close     ")} {r?.Completed ?? 0,9:N0} ok {r?.Errors.Total ?? 0,4:N0} err {r?.Unfinished ?? 0,3} cut  " +
                  $"live rss {now.Live.Rss / 1048576.0,6:0.0} MB, heap {now.Live.GcHeap / 1048576.0,5:0.0} MB, malloc {now.Live.MallocInUse / 1048576.0,5:0.0} MB; held rss {now.Held.Rss / 1048576.0,6:0.0} MB; {now.Held.Fds} fds");
            csv?.WriteLine(string.Join(',', now.At.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture), k, label, keepAlive ? "keep-alive" : "close",
                now.Connections, now.Requests, Row(now.Held), Row(now.Live)));
            csv?.Flush();
        }
        if (ct.IsCancellationRequested) failures.Add("cancelled before the end");
        unsafe { foreach (var p in leaked) NativeMemory.Free((void*)p); }
        if (options.SvgPath is { } svg && samples.Count >= 2)
            File.WriteAllText(svg, SoakChart.Svg(samples, $"lab soak --seconds {options.Duration.TotalSeconds:0}: {opened:N0} connections, {received:N0} requests, {samples.Count} readings"));
        return new SoakVerdict(clock.Elapsed, k, sent, received, new LoadErrors(errors[0], errors[1], errors[2], errors[3], errors[4], errors[5]), cut, served, samples, failures);
    }

    static string Row(ProcessMemory m) => string.Join(',', m.Rss, m.Anonymous, m.GcHeap, m.GcCommitted, m.MallocInUse, m.MallocFree, m.MallocArenas, m.StackResident, m.Threads, m.Fds);

    /// <summary>The deliberate leak of <see cref="SoakOptions.LeakPerConnection"/>: one malloc per connection, written so it is resident.</summary>
    static unsafe void Leak(List<nint> into, long connections, int bytes)
    {
        for (long i = 0; i < connections; i++)
        {
            var p = NativeMemory.Alloc((nuint)bytes);
            new Span<byte>(p, bytes).Fill(0x5a);
            into.Add((nint)p);
        }
    }
}
