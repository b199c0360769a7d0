namespace Lab.Topologies;

/// <summary>Every topology by name, for the CLI (<c>lab serve NAME</c>) and for tests that run one contract against all.</summary>
public static class TopologyCatalog
{
    /// <summary>The models' names as <see cref="Create"/> takes them (kebab-case; the class names work too).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["single-thread-loop", "dispatcher-workers", "request-dispatch", "shared-socket-acceptors", "reuse-port-shards"];

    /// <summary>Every topology and variant, as (label, factory): the five models with each acceptor variant.</summary>
    public static IReadOnlyList<(string Label, Func<TopologyOptions, Topology> Create)> All { get; } =
    [
        ("SingleThreadLoop", o => new SingleThreadLoop(o)),
        ("DispatcherWorkers", o => new DispatcherWorkers(o)),
        ("RequestDispatch", o => new RequestDispatch(o)),
        .. Enum.GetValues<AcceptorVariant>().Select(v => ($"SharedSocketAcceptors/{v}", (Func<TopologyOptions, Topology>)(o => new SharedSocketAcceptors(o, v)))),
        ("ReusePortShards", o => new ReusePortShards(o)),
    ];

    /// <summary>
    /// Makes (does not start) the topology called <paramref name="name"/>: "single-thread-loop" (or "node"),
    /// "dispatcher-workers" ("memcached"), "request-dispatch" ("ramcloud"), "shared-socket-acceptors" ("nginx") with
    /// <paramref name="variant"/> (blocking-accept, epoll-per-thread, epoll-exclusive, shared-epoll, accept-mutex), or
    /// "reuse-port-shards" ("reuseport").
    /// </summary>
    public static Topology Create(string name, TopologyOptions? options = null, string? variant = null)
    {
        var key = Normalize(name);
        if (variant is not null && key != "sharedsocketacceptors" && key != "nginx")
            throw new ArgumentException($"Only shared-socket-acceptors has variants; '{name}' has none.", nameof(variant));
        return key switch
        {
            "singlethreadloop" or "node" => new SingleThreadLoop(options),
            "dispatcherworkers" or "memcached" => new DispatcherWorkers(options),
            "requestdispatch" or "ramcloud" => new RequestDispatch(options),
            "sharedsocketacceptors" or "nginx" => new SharedSocketAcceptors(options, ParseVariant(variant)),
            "reuseportshards" or "reuseport" => new ReusePortShards(options),
            _ => throw new ArgumentException($"No topology called '{name}'. Use one of: {string.Join(", ", Names)}.", nameof(name)),
        };
    }

    /// <summary>Parses "epoll-exclusive", "EpollExclusive"...; null means <see cref="AcceptorVariant.EpollPerThread"/>.</summary>
    public static AcceptorVariant ParseVariant(string? variant)
    {
        if (variant is null) return AcceptorVariant.EpollPerThread;
        foreach (var v in Enum.GetValues<AcceptorVariant>())
            if (Normalize(v.ToString()) == Normalize(variant)) return v;
        throw new ArgumentException($"No acceptor variant called '{variant}'. Use one of: blocking-accept, epoll-per-thread, epoll-exclusive, shared-epoll, accept-mutex.", nameof(variant));
    }

    static string Normalize(string s) => new string(s.Where(char.IsLetterOrDigit).ToArray()).ToLowerInvariant();
}
