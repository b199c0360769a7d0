using System.Diagnostics;
using Lab.Charts;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>How the client sends a request made of a header and a body.</summary>
public enum SendMode
{
    /// <summary>Two write() calls, Nagle's algorithm on (the default).</summary>
    Nagle,
    /// <summary>Two write() calls with TCP_NODELAY set: Nagle off.</summary>
    NoDelay,
    /// <summary>TCP_CORK on, two write() calls, TCP_CORK off: the kernel holds the partial segment until uncorked.</summary>
    Cork,
    /// <summary>One write() of header and body together (Nagle on): the application-level fix.</summary>
    OneWrite,
}

/// <summary>Parameters of <see cref="WriteWriteRead"/>.</summary>
public sealed record WriteWriteReadOptions
{
    /// <summary>Requests per mode.</summary>
    public int Iterations { get; init; } = 40;
    public int HeaderBytes { get; init; } = 40;
    public int BodyBytes { get; init; } = 200;
    public int ResponseBytes { get; init; } = 100;
    /// <summary>Capture the segments on lo (needs CAP_NET_RAW; skipped without it).</summary>
    public bool Capture { get; init; } = true;
}

/// <summary>One mode's measurements.</summary>
public sealed class ModeResult
{
    public required SendMode Mode { get; init; }
    /// <summary>Milliseconds per request: first write() to the last byte of the response read.</summary>
    public required IReadOnlyList<double> Millis { get; init; }
    /// <summary>Each request's wall-clock start and end.</summary>
    public required IReadOnlyList<(DateTime Start, DateTime End)> Windows { get; init; }
    public IReadOnlyList<TcpSegment> Segments { get; init; } = [];
    public System.Net.IPEndPoint? ClientEndPoint { get; init; }
    public bool Captured { get; init; }

    public double Median => Stats.Percentile(Millis, 50);
    public double P90 => Stats.Percentile(Millis, 90);
    /// <summary>Requests that took 20 ms or more (a delayed-ACK stall; loopback round trips take tens of µs).</summary>
    public int Stalls => Millis.Count(m => m >= 20);

    /// <summary>Bytes per request and per response (to tell requests apart by sequence number).</summary>
    public int RequestBytes { get; init; }
    public int ResponseBytes { get; init; }

    bool FromClient(TcpSegment s) => s.Source.Equals(ClientEndPoint);

    /// <summary>
    /// The captured segments of request <paramref name="i"/> (0-based), told apart by sequence numbers, not clocks:
    /// the client's bytes of request i, the server's bytes of response i, and the pure ACKs acknowledging them.
    /// </summary>
    public IReadOnlyList<TcpSegment> SegmentsOf(int i)
    {
        var clientData = Segments.FirstOrDefault(s => FromClient(s) && s.PayloadLength > 0);
        var serverData = Segments.FirstOrDefault(s => !FromClient(s) && s.PayloadLength > 0);
        if (clientData == null || serverData == null) return [];
        uint c0 = clientData.Seq, s0 = serverData.Seq;
        bool InRequest(uint offset, bool inclusiveEnd, int size) =>
            inclusiveEnd ? offset > (uint)(i * size) && offset <= (uint)((i + 1) * size)
                         : offset >= (uint)(i * size) && offset < (uint)((i + 1) * size);
        return Segments.Where(s => FromClient(s)
            ? (s.PayloadLength > 0 ? InRequest(unchecked(s.Seq - c0), false, RequestBytes) : InRequest(unchecked(s.Ack - s0), true, ResponseBytes))
            : (s.PayloadLength > 0 ? InRequest(unchecked(s.Seq - s0), false, ResponseBytes) : InRequest(unchecked(s.Ack - c0), true, RequestBytes)))
            .ToList();
    }

    /// <summary>Data segments the client sent per request, on average.</summary>
    public double RequestSegmentsPerRequest =>
        Captured ? Segments.Count(s => s.Source.Equals(ClientEndPoint) && s.PayloadLength > 0) / (double)Millis.Count : double.NaN;

    /// <summary>One request's segments as tcpdump-like rows: time (ms from the request's first segment), direction, flags, bytes.</summary>
    public IReadOnlyList<SegmentRow> Rows(int i)
    {
        var segs = SegmentsOf(i);
        if (segs.Count == 0) return [];
        var t0 = segs[0].Time;
        return segs.Select(s => new SegmentRow(
            Math.Round((s.Time - t0).TotalMilliseconds, 3),
            FromClient(s) ? "client → server" : "server → client",
            s.FlagText, s.PayloadLength, s.Window)).ToList();
    }
}

/// <summary>A captured segment as a table row.</summary>
public sealed record SegmentRow(double Ms, string Direction, string Flags, int Bytes, int Window);

/// <summary>
/// The write-write-read pattern: a client sends a request as two small writes (header, then body) and reads the
/// response; the server answers only once it has read both. With Nagle on, the body waits for the ACK of the
/// header, and the server delays that ACK (it has nothing to send yet): the request stalls until the delayed-ACK
/// timer fires. Each mode runs on a fresh connection, <see cref="WriteWriteReadOptions.Iterations"/> requests in a row.
/// </summary>
public static class WriteWriteRead
{
    public static ModeResult Run(SendMode mode, WriteWriteReadOptions? options = null)
    {
        var o = options ?? new WriteWriteReadOptions();
        if (o.Iterations is < 1 or > 2000) throw new ArgumentOutOfRangeException(nameof(options), o.Iterations, "1-2000 iterations.");
        using var pair = ConnectedPair.Open();
        var client = pair.Client;
        var server = pair.Server;
        if (mode == SendMode.NoDelay) client.NoDelay = true;
        PacketCapture? capture = o.Capture && Lab.Hosts.Capabilities.Has(Lab.Hosts.Capability.NetRaw)
            ? PacketCapture.Start(pair.Listener.Port, "lo", maxPackets: 50_000, maxDuration: TimeSpan.FromSeconds(60)) : null;
        int requestBytes = o.HeaderBytes + o.BodyBytes;
        var serverTask = Task.Factory.StartNew(() =>
        {
            var req = new byte[requestBytes];
            var resp = new byte[o.ResponseBytes];
            for (int i = 0; i < o.Iterations; i++)
            {
                var r = server.ReadExactly(req, TimeSpan.FromSeconds(5));
                if (!r.IsData) return;
                server.WriteAll(resp, TimeSpan.FromSeconds(5));
            }
        }, TaskCreationOptions.LongRunning);

        var header = new byte[o.HeaderBytes];
        var body = new byte[o.BodyBytes];
        var both = new byte[requestBytes];
        var response = new byte[o.ResponseBytes];
        var millis = new List<double>();
        var windows = new List<(DateTime, DateTime)>();
        try
        {
            for (int i = 0; i < o.Iterations; i++)
            {
                var startWall = DateTime.UtcNow;
                var sw = Stopwatch.StartNew();
                switch (mode)
                {
                    case SendMode.OneWrite:
                        client.WriteAll(both);
                        break;
                    case SendMode.Cork:
                        client.Cork = true;
                        client.WriteAll(header);
                        client.WriteAll(body);
                        client.Cork = false;
                        break;
                    default:
                        client.WriteAll(header);
                        client.WriteAll(body);
                        break;
                }
                var r = client.ReadExactly(response, TimeSpan.FromSeconds(5));
                sw.Stop();
                if (!r.IsData) throw new InvalidOperationException($"The server closed during request {i}: {r}");
                millis.Add(sw.Elapsed.TotalMilliseconds);
                windows.Add((startWall, DateTime.UtcNow));
            }
        }
        finally
        {
            serverTask.Wait(TimeSpan.FromSeconds(6));
            Thread.Sleep(capture != null ? 60 : 0); // let the last delayed ACK reach the capture
            capture?.Dispose();
        }
        return new ModeResult
        {
            Mode = mode, Millis = millis, Windows = windows,
            Segments = capture?.Segments ?? [], ClientEndPoint = client.LocalEndPoint, Captured = capture != null,
            RequestBytes = requestBytes, ResponseBytes = o.ResponseBytes,
        };
    }

    /// <summary>Runs every mode in <paramref name="modes"/> (all four by default), one after another.</summary>
    public static IReadOnlyList<ModeResult> RunAll(WriteWriteReadOptions? options = null, params SendMode[] modes)
    {
        if (modes.Length == 0) modes = Enum.GetValues<SendMode>();
        return modes.Select(m => Run(m, options)).ToList();
    }

    /// <summary>Median and p90 per mode, as grouped bars.</summary>
    public static Figure Chart(IReadOnlyList<ModeResult> results) =>
        LabCharts.GroupedBars("Write-write-read: time per request (log scale)", "milliseconds",
            results.Select(r => Label(r.Mode)).ToList(),
            ("median", results.Select(r => Math.Round(r.Median, 3)).ToList()),
            ("p90", results.Select(r => Math.Round(r.P90, 3)).ToList()))
        .WithYAxis("milliseconds (log scale)", log: true);

    /// <summary>Every request's time, per mode, in order: the stalls show as a band near the delayed-ACK timeout.</summary>
    public static Figure Timeline(IReadOnlyList<ModeResult> results) =>
        LabCharts.TimeSeries("Each request's time, in order (x: request number)", "milliseconds",
            results.Select(r => new Series(Label(r.Mode), Enumerable.Range(0, r.Millis.Count).Select(i => (double)i).ToList(), r.Millis)).ToArray())
        .WithXAxis("request number");

    /// <summary>A row per mode.</summary>
    public static IReadOnlyList<ModeSummary> Summary(IReadOnlyList<ModeResult> results) =>
        results.Select(r => new ModeSummary(Label(r.Mode), r.Millis.Count, Math.Round(r.Median, 3), Math.Round(r.P90, 3),
            Math.Round(r.Millis.Max(), 3), r.Stalls, double.IsNaN(r.RequestSegmentsPerRequest) ? "not captured" : r.RequestSegmentsPerRequest.ToString("0.00"))).ToList();

    public static string Label(SendMode m) => m switch
    {
        SendMode.Nagle => "Nagle on (default)",
        SendMode.NoDelay => "TCP_NODELAY",
        SendMode.Cork => "TCP_CORK",
        SendMode.OneWrite => "one write()",
        _ => m.ToString(),
    };
}

/// <summary>One mode's figures in milliseconds.</summary>
public sealed record ModeSummary(string Mode, int Requests, double MedianMs, double P90Ms, double MaxMs, int StallsOver20Ms, string DataSegmentsPerRequest);
