using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Lab.Hosts;
using Lab.Sockets;
using Lab.Http;

namespace Lab.Load;

/// <summary>One kind of request in a load mix, and how often it is sent relative to the others.</summary>
/// <param name="Path">The request target, e.g. "/", "/sleep?ms=200", "/work?ms=5" (any path works against nginx).</param>
/// <param name="Weight">Relative weight (99 and 1 make 99% and 1%).</param>
public sealed record RequestMix(string Path, double Weight)
{
    /// <summary>"/": the fixed body at once.</summary>
    public static RequestMix Hello(double weight = 1) => new("/", weight);
    /// <summary>"/sleep?ms=N": the server's thread blocks for N ms.</summary>
    public static RequestMix Sleep(int milliseconds, double weight = 1) => new($"/sleep?ms={milliseconds}", weight);
    /// <summary>"/work?ms=N": the server's thread spins on the CPU for N ms.</summary>
    public static RequestMix Work(int milliseconds, double weight = 1) => new($"/work?ms={milliseconds}", weight);
    /// <summary>A <see cref="Route"/> with its milliseconds.</summary>
    public static RequestMix Of(Route route, int milliseconds, double weight) => route switch
    {
        Route.Sleep => Sleep(milliseconds, weight),
        Route.Work => Work(milliseconds, weight),
        _ => Hello(weight),
    };

    /// <summary>Parses "99:/,1:/sleep?ms=200" (weight:path, comma-separated) as the CLI takes it.</summary>
    public static IReadOnlyList<RequestMix> ParseList(string text)
    {
        var list = new List<RequestMix>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = part.IndexOf(':');
            if (colon <= 0 || !double.TryParse(part[..colon].TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
                throw new ArgumentException($"'{part}' is not WEIGHT:PATH (e.g. 99:/,1:/sleep?ms=200).", nameof(text));
            list.Add(new RequestMix(part[(colon + 1)..], w));
        }
        return list;
    }
}

/// <summary>
/// What <see cref="LoadGenerator.Run(LoadOptions, IProgress{LoadProgress}?, CancellationToken)"/> sends, to where, for how long. Every run is bounded: by
/// <see cref="Duration"/> (at most 10 minutes) and/or <see cref="Requests"/> (at most 10 million).
/// </summary>
public sealed record LoadOptions
{
    /// <summary>The largest <see cref="Duration"/>.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromMinutes(10);
    /// <summary>The largest <see cref="Requests"/>.</summary>
    public const long MaxRequests = 10_000_000;
    /// <summary>The most <see cref="Connections"/>.</summary>
    public const int MaxConnections = 10_000;

    /// <summary>
    /// Where to send: "127.0.0.1:8080" or "http://127.0.0.1:8080/path" (an IP literal: the lab resolves no names).
    /// Must be loopback or a host the lab created (<see cref="LabAddresses.Ensure"/>). Defaults to null, which
    /// <see cref="Lab.Topologies.TopologyRunner"/> fills with the topology's address.
    /// </summary>
    public string? Target { get; init; }

    /// <summary>Connections kept open (closed loop: each has one request outstanding at a time), 1 to 10000. Defaults to 16.</summary>
    public int Connections { get; init; } = 16;

    /// <summary>Client threads, each with its own epoll and a share of the connections. Defaults to null: 2 (or 1 for one connection or one CPU), like wrk -t2.</summary>
    public int? Threads { get; init; }

    /// <summary>How long to send. Defaults to null: 5 s when <see cref="Requests"/> is also null, else until the requests are done (at most 10 minutes).</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>How many requests to finish (completed or failed). Defaults to null: as many as <see cref="Duration"/> allows.</summary>
    public long? Requests { get; init; }

    /// <summary>
    /// Open loop: requests are due at this fixed rate (requests/s) whether or not earlier ones have been answered,
    /// and latency counts from when each was due (so a server stall shows in full: no coordinated omission).
    /// Defaults to null: closed loop (each connection sends its next request when the previous one is answered).
    /// </summary>
    public double? Rate { get; init; }

    /// <summary>Keep connections open between requests (HTTP/1.1 keep-alive). False opens a new connection per request and sends <c>Connection: close</c>. Defaults to true.</summary>
    public bool KeepAlive { get; init; } = true;

    /// <summary>What to request, weighted. Defaults to null: the target URL's path, or "/".</summary>
    public IReadOnlyList<RequestMix>? Mix { get; init; }

    /// <summary>How long a handshake may take before it counts as a timeout. Defaults to 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a request may wait for its whole response before it counts as a timeout. Defaults to 10 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    internal sealed record Resolved(IPEndPoint Endpoint, string Host, RequestMix[] Mix, int Threads, TimeSpan Duration, long Requests);

    /// <summary>Checks every option (clear errors naming the value) and resolves the target.</summary>
    internal Resolved Resolve(string? targetOverride = null)
    {
        var target = targetOverride ?? Target ?? throw new ArgumentException("LoadOptions.Target is not set: give \"127.0.0.1:PORT\" or \"http://127.0.0.1:PORT/\".", nameof(Target));
        var (endpoint, path) = ParseTarget(target);
        LabAddresses.Ensure(endpoint.Address, "load target");
        if (Connections is < 1 or > MaxConnections)
            throw new ArgumentOutOfRangeException(nameof(Connections), Connections, $"Connections = {Connections:N0} is outside 1..{MaxConnections:N0} (each is an fd and an ephemeral port).");
        if (Threads is < 1 or > 64)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, $"Threads = {Threads} is outside 1..64.");
        if (Duration is { } d && (d <= TimeSpan.Zero || d > MaxDuration))
            throw new ArgumentOutOfRangeException(nameof(Duration), d, $"Duration = {d} must be positive and at most {MaxDuration.TotalMinutes} minutes.");
        if (Requests is < 1 or > MaxRequests)
            throw new ArgumentOutOfRangeException(nameof(Requests), Requests, $"Requests = {Requests:N0} is outside 1..{MaxRequests:N0}.");
        if (Rate is { } r && (double.IsNaN(r) || r <= 0 || r > 1_000_000))
            throw new ArgumentOutOfRangeException(nameof(Rate), r, $"Rate = {r} requests/s must be positive and at most 1,000,000.");
        if (ConnectTimeout <= TimeSpan.Zero || RequestTimeout <= TimeSpan.Zero || ConnectTimeout > TimeSpan.FromMinutes(2) || RequestTimeout > TimeSpan.FromMinutes(2))
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), "ConnectTimeout and RequestTimeout must be positive and at most 2 minutes.");
        var mix = (Mix ?? [new RequestMix(path, 1)]).ToArray();
        if (mix.Length == 0 || mix.Any(m => !(m.Weight > 0) || !m.Path.StartsWith('/') || m.Path.Any(c => c <= ' ' || c > '~')))
            throw new ArgumentException("Mix needs at least one entry, each with a positive weight and a path starting with '/' without spaces.", nameof(Mix));
        int threads = Threads ?? (Connections == 1 || Environment.ProcessorCount == 1 ? 1 : 2);
        threads = Math.Min(threads, Connections);
        var duration = Duration ?? (Requests is null ? TimeSpan.FromSeconds(5) : MaxDuration);
        long requests = Requests ?? long.MaxValue;
        string host = endpoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]:{endpoint.Port}" : $"{endpoint.Address}:{endpoint.Port}";
        return new Resolved(endpoint, host, mix, threads, duration, requests);
    }

    /// <summary>"127.0.0.1:8080" or "http://127.0.0.1:8080/path?q" → (endpoint, path).</summary>
    internal static (IPEndPoint, string) ParseTarget(string target)
    {
        if (!target.Contains("://")) return (Endpoints.Parse(target), "/");
        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme != "http")
            throw new ArgumentException($"'{target}' is not an http:// URL (the lab speaks plain HTTP/1.1; no https).", nameof(target));
        if (uri.HostNameType is not (UriHostNameType.IPv4 or UriHostNameType.IPv6))
            throw new ArgumentException($"'{target}': the lab resolves no names; use an address such as http://127.0.0.1:{(uri.IsDefaultPort ? 80 : uri.Port)}/.", nameof(target));
        var ep = new IPEndPoint(IPAddress.Parse(uri.Host.Trim('[', ']')), uri.Port);
        return (ep, string.IsNullOrEmpty(uri.PathAndQuery) ? "/" : uri.PathAndQuery);
    }
}
