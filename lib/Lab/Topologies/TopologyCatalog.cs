namespace Lab.Topologies;

/// <summary>Every topology by name, for the CLI (<c>lab serve NAME</c>) and for tests that run one contract against all.</summary>
public static class TopologyCatalog
{
    /// <summary>The models' names as <see cref="Create"/> takes them (kebab-case; the class names work too).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["single-thread-loop", "dispatcher-workers", "request-dispatch", "shared-socket-acceptors", "reuse-port-shards", "role-split", "io-uring-accept"];

    /// <summary>Every topology and variant, as (label, factory): the five models with each acceptor variant, and chapter 06's role split.</summary>
    public static IReadOnlyList<(string Label, Func<TopologyOptions, Topology> Create)> All { get; } =
    [
        ("SingleThreadLoop", o => new SingleThreadLoop(o)),
        ("DispatcherWorkers", o => new DispatcherWorkers(o)),
        ("RequestDispatch", o => new RequestDispatch(o)),
        .. Enum.GetValues<AcceptorVariant>().Select(v => ($"SharedSocketAcceptors/{v}", (Func<TopologyOptions, Topology>)(o => new SharedSocketAcceptors(o, v)))),
        ("ReusePortShards", o => new ReusePortShards(o)),
        // Chapter 06's server: one listener thread, acceptor threads in blocking accept, reader threads with epoll.
        ($"RoleSplit/{DefaultRoles}", o => Create("role-split", o, DefaultRoles)),
        // Beyond the notes: the kernel accepts and reads into the ring (io_uring multishot accept and receive).
        ("IoUringAccept", o => new IoUringAccept(o)),
    ];

    /// <summary>
    /// Makes (does not start) the topology called <paramref name="name"/>: "single-thread-loop" (or "node"),
    /// "dispatcher-workers" ("memcached"), "request-dispatch" ("ramcloud"), "shared-socket-acceptors" ("nginx") with
    /// <paramref name="variant"/> (blocking-accept, epoll-per-thread, epoll-exclusive, shared-epoll, accept-mutex), or
    /// "reuse-port-shards" ("reuseport"), chapter 06's "role-split" with <paramref name="variant"/> "A-acceptors-R-readers"
    /// (default 2-acceptors-3-readers), or "io-uring-accept" ("io-uring").
    /// </summary>
    public static Topology Create(string name, TopologyOptions? options = null, string? variant = null)
    {
        var key = Normalize(name);
        if (variant is not null && key is not ("sharedsocketacceptors" or "nginx" or "rolesplit"))
            throw new ArgumentException($"Only shared-socket-acceptors and role-split have variants; '{name}' has none.", nameof(variant));
        return key switch
        {
            "singlethreadloop" or "node" => new SingleThreadLoop(options),
            "dispatcherworkers" or "memcached" => new DispatcherWorkers(options),
            "requestdispatch" or "ramcloud" => new RequestDispatch(options),
            "sharedsocketacceptors" or "nginx" => new SharedSocketAcceptors(options, ParseVariant(variant)),
            "reuseportshards" or "reuseport" => new ReusePortShards(options),
            "rolesplit" => NewRoleSplit(variant, options),
            "iouringaccept" or "iouring" => new IoUringAccept(options),
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

    /// <summary>role-split's variant when none is given.</summary>
    public const string DefaultRoles = "2-acceptors-3-readers";

    /// <summary>Parses "3-acceptors-5-readers" (null: <see cref="DefaultRoles"/>) into thread counts.</summary>
    public static (int Acceptors, int Readers) ParseRoles(string? variant)
    {
        variant ??= DefaultRoles;
        var m = System.Text.RegularExpressions.Regex.Match(variant, @"^(\d{1,3})-acceptors?-(\d{1,3})-readers?$");
        if (!m.Success)
            throw new ArgumentException($"No role-split variant called '{variant}'. Write it as A-acceptors-R-readers, e.g. 3-acceptors-5-readers.", nameof(variant));
        return (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value));
    }

    static RoleSplit NewRoleSplit(string? variant, TopologyOptions? options)
    {
        var (acceptors, readers) = ParseRoles(variant);
        return new RoleSplit(acceptors, readers, options);
    }

    static string Normalize(string s) => new string(s.Where(char.IsLetterOrDigit).ToArray()).ToLowerInvariant();
}
