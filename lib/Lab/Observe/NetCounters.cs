using System.Collections;
using System.Globalization;
using System.Text;

namespace Lab.Observe;

/// <summary>
/// The kernel's network counters, as `nstat` reads them: /proc/net/netstat (TcpExt, IpExt, MPTcpExt...),
/// /proc/net/snmp (Ip, Icmp, Tcp, Udp...) and /proc/net/snmp6 (Ip6, Icmp6, Udp6...). Names are dotted,
/// "TcpExt.ListenOverflows"; the nstat spelling "TcpExtListenOverflows" is accepted wherever a name is.
/// Counters are per network namespace: /proc/net is the caller's; pass a pid to read the namespace that
/// process is in (/proc/PID/net/...).
/// </summary>
public static class NetCounters
{
    /// <summary>The counters the chapters use, by their dotted names.</summary>
    public static class Names
    {
        /// <summary>SYNs or final ACKs dropped because the accept queue was full (sk_acceptq_is_full).</summary>
        public const string ListenOverflows = "TcpExt.ListenOverflows";
        /// <summary>Every drop on a listener, overflows included (so ListenDrops ≥ ListenOverflows).</summary>
        public const string ListenDrops = "TcpExt.ListenDrops";
        /// <summary>SYN-ACKs sent with a SYN cookie instead of a request socket (SYN queue full, tcp_syncookies=1, or always with 2).</summary>
        public const string SyncookiesSent = "TcpExt.SyncookiesSent";
        /// <summary>Final ACKs that carried a valid SYN cookie.</summary>
        public const string SyncookiesRecv = "TcpExt.SyncookiesRecv";
        /// <summary>Final ACKs whose cookie did not check out.</summary>
        public const string SyncookiesFailed = "TcpExt.SyncookiesFailed";
        /// <summary>SYNs dropped because the SYN queue was full and cookies were off.</summary>
        public const string TCPReqQFullDrop = "TcpExt.TCPReqQFullDrop";
        /// <summary>SYNs answered with a cookie because the SYN queue was full.</summary>
        public const string TCPReqQFullDoCookies = "TcpExt.TCPReqQFullDoCookies";
        /// <summary>Segments dropped because a socket's backlog (owned by a user thread) was full.</summary>
        public const string TCPBacklogDrop = "TcpExt.TCPBacklogDrop";
        /// <summary>connect() calls that sent a SYN (CLOSED → SYN-SENT).</summary>
        public const string ActiveOpens = "Tcp.ActiveOpens";
        /// <summary>Connections a listener created from a SYN (LISTEN → SYN-RECV).</summary>
        public const string PassiveOpens = "Tcp.PassiveOpens";
        /// <summary>Connection attempts that failed (SYN-SENT/SYN-RECV → CLOSED, or SYN-RECV → LISTEN).</summary>
        public const string AttemptFails = "Tcp.AttemptFails";
        /// <summary>Resets of established connections (ESTABLISHED/CLOSE-WAIT → CLOSED).</summary>
        public const string EstabResets = "Tcp.EstabResets";
        /// <summary>Currently established connections (a gauge, not a counter).</summary>
        public const string CurrEstab = "Tcp.CurrEstab";
        /// <summary>Segments carrying RST sent.</summary>
        public const string OutRsts = "Tcp.OutRsts";

        /// <summary>All of the above.</summary>
        public static IReadOnlyList<string> All { get; } =
        [
            ListenOverflows, ListenDrops, SyncookiesSent, SyncookiesRecv, SyncookiesFailed, TCPReqQFullDrop,
            TCPReqQFullDoCookies, TCPBacklogDrop, ActiveOpens, PassiveOpens, AttemptFails, EstabResets, CurrEstab, OutRsts,
        ];
    }

    static readonly string[] Files = ["netstat", "snmp", "snmp6"];

    /// <summary>
    /// Reads every counter now, from the calling thread's network namespace (inside <c>NetHost.Run</c>, the host's)
    /// or, with <paramref name="pid"/>, from that process's. /proc/net would follow the process's main thread instead,
    /// so it reads /proc/thread-self/net.
    /// </summary>
    public static CounterSnapshot Read(int? pid = null) =>
        ReadFrom(pid is { } p ? $"/proc/{p}/net" : "/proc/thread-self/net");

    /// <summary>Reads every counter from a /proc/.../net folder (netstat, snmp, and snmp6 when present).</summary>
    public static CounterSnapshot ReadFrom(string procNetDirectory)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        var at = DateTime.UtcNow;
        bool any = false;
        foreach (var f in Files)
        {
            var path = Path.Combine(procNetDirectory, f);
            string text;
            try { text = File.ReadAllText(path); }
            catch (FileNotFoundException) when (f == "snmp6") { continue; } // no IPv6 in this kernel or namespace
            catch (DirectoryNotFoundException) when (f == "snmp6") { continue; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ObserveException($"Cannot read {path}: {e.Message}" +
                    (procNetDirectory.StartsWith("/proc/", StringComparison.Ordinal) && procNetDirectory is not ("/proc/net" or "/proc/thread-self/net")
                        ? " (is that process still running, and may this user read its /proc entries?)" : ""), 0, e);
            }
            any = true;
            if (f == "snmp6") ParseSnmp6(text, values, path); else ParseTables(text, values, path);
        }
        if (!any) throw new ObserveException($"No counters found in {procNetDirectory}.");
        return new CounterSnapshot(values, at);
    }

    /// <summary>
    /// Starts watching: <see cref="CounterWatch.Changes"/> is what changed since now (live until disposed, then frozen).
    /// <code>using var watch = NetCounters.Watch(); /* experiment */ watch.Changes</code>
    /// </summary>
    public static CounterWatch Watch(int? pid = null) => new(pid);

    /// <summary>Runs <paramref name="experiment"/> and returns the counters that changed while it ran.</summary>
    public static CounterDelta During(Action experiment, int? pid = null)
    {
        var before = Read(pid);
        experiment();
        return before.Diff(Read(pid));
    }

    /// <summary>Runs <paramref name="experiment"/> and returns the counters that changed while it ran.</summary>
    public static async Task<CounterDelta> DuringAsync(Func<Task> experiment, int? pid = null)
    {
        var before = Read(pid);
        await experiment().ConfigureAwait(false);
        return before.Diff(Read(pid));
    }

    /// <summary>"TcpExtListenOverflows" → "TcpExt.ListenOverflows" when the prefix is a known table; dotted names pass through.</summary>
    public static string ToDotted(string name, IEnumerable<string>? knownPrefixes = null)
    {
        if (name.Contains('.')) return name;
        foreach (var p in knownPrefixes ?? KnownPrefixes)
            if (name.Length > p.Length && name.StartsWith(p, StringComparison.Ordinal) && char.IsUpper(name[p.Length]))
                return p + "." + name.Substring(p.Length);
        return name;
    }

    /// <summary>"TcpExt.ListenOverflows" → "TcpExtListenOverflows", the name `nstat` prints.</summary>
    public static string ToNstat(string dottedName) => dottedName.Replace(".", "", StringComparison.Ordinal);

    // Longest first, so "TcpExt" wins over "Tcp" and "IcmpMsg" over "Icmp".
    internal static readonly string[] KnownPrefixes =
        ["MPTcpExt", "UdpLite6", "IcmpMsg", "TcpExt", "UdpLite", "Icmp6", "IpExt", "Udp6", "Icmp", "Ip6", "Tcp", "Udp", "Ip"];

    /// <summary>Parses the "Table: names" / "Table: values" line pairs of /proc/net/netstat and /proc/net/snmp.</summary>
    internal static void ParseTables(string text, Dictionary<string, long> into, string source)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i + 1 < lines.Length; i += 2)
        {
            var header = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (header.Length == 0 || !header[0].EndsWith(':') || values.Length == 0 || values[0] != header[0] || header.Length != values.Length)
                throw new ObserveException($"{source}: lines {i + 1}-{i + 2} are not a names/values pair of one table.");
            var table = header[0].TrimEnd(':');
            for (int k = 1; k < header.Length; k++)
                into[table + "." + header[k]] = ParseValue(values[k], source);
        }
    }

    /// <summary>Parses /proc/net/snmp6: one "Ip6InReceives   6" per line; the table is the prefix through the '6'.</summary>
    internal static void ParseSnmp6(string text, Dictionary<string, long> into, string source)
    {
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2) throw new ObserveException($"{source}: unexpected line '{line}'.");
            int six = parts[0].IndexOf('6');
            string name = six > 0 && six + 1 < parts[0].Length ? parts[0][..(six + 1)] + "." + parts[0][(six + 1)..] : parts[0];
            into[name] = ParseValue(parts[1], source);
        }
    }

    static long ParseValue(string s, string source)
    {
        if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)) return v;
        // Counters are unsigned 64-bit in the kernel; one past long.MaxValue wraps like the kernel's would.
        if (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var u)) return unchecked((long)u);
        throw new ObserveException($"{source}: '{s}' is not a number.");
    }
}

/// <summary>Every network counter at one moment. Index by dotted ("Tcp.ActiveOpens") or nstat ("TcpActiveOpens") name.</summary>
public sealed class CounterSnapshot : IReadOnlyDictionary<string, long>
{
    readonly Dictionary<string, long> _values;

    internal CounterSnapshot(Dictionary<string, long> values, DateTime at) { _values = values; At = at; }

    /// <summary>When the counters were read (UTC).</summary>
    public DateTime At { get; }

    /// <summary>The counter's value; throws KeyNotFoundException naming the counter when this kernel has no such counter.</summary>
    public long this[string name] => TryGetValue(name, out var v) ? v
        : throw new KeyNotFoundException($"No counter '{name}' on this kernel (names look like \"TcpExt.ListenOverflows\" or \"TcpExtListenOverflows\").");

    public bool TryGetValue(string name, out long value) =>
        _values.TryGetValue(name, out value) || _values.TryGetValue(NetCounters.ToDotted(name), out value);

    public bool ContainsKey(string name) => TryGetValue(name, out _);

    /// <summary>The counters as nstat names them ("TcpExtListenOverflows").</summary>
    public IReadOnlyDictionary<string, long> ByNstatName() => _values.ToDictionary(kv => NetCounters.ToNstat(kv.Key), kv => kv.Value);

    /// <summary>What changed from this snapshot to <paramref name="later"/>.</summary>
    public CounterDelta Diff(CounterSnapshot later)
    {
        var changes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, after) in later._values)
        {
            _values.TryGetValue(name, out var before);
            if (after != before) changes[name] = unchecked(after - before);
        }
        return new CounterDelta(changes, this, later);
    }

    public IEnumerable<string> Keys => _values.Keys;
    public IEnumerable<long> Values => _values.Values;
    public int Count => _values.Count;
    public IEnumerator<KeyValuePair<string, long>> GetEnumerator() => _values.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"{Count} counters at {At:HH:mm:ss.fff}";
}

/// <summary>The counters that changed between two snapshots (only those; an unchanged counter reads 0).</summary>
public sealed class CounterDelta : IReadOnlyDictionary<string, long>
{
    readonly Dictionary<string, long> _changes;

    internal CounterDelta(Dictionary<string, long> changes, CounterSnapshot from, CounterSnapshot to)
    {
        _changes = changes;
        From = from;
        To = to;
    }

    public CounterSnapshot From { get; }
    public CounterSnapshot To { get; }
    public TimeSpan Elapsed => To.At - From.At;

    /// <summary>How much the counter changed; 0 when unchanged; throws when this kernel has no such counter.</summary>
    public long this[string name] =>
        _changes.TryGetValue(name, out var v) || _changes.TryGetValue(NetCounters.ToDotted(name), out v) ? v
        : To.ContainsKey(name) ? 0
        : throw new KeyNotFoundException($"No counter '{name}' on this kernel.");

    public bool TryGetValue(string name, out long value) =>
        _changes.TryGetValue(name, out value) || _changes.TryGetValue(NetCounters.ToDotted(name), out value);

    public bool ContainsKey(string name) => TryGetValue(name, out _);
    public IEnumerable<string> Keys => _changes.Keys;
    public IEnumerable<long> Values => _changes.Values;
    public int Count => _changes.Count;
    public IEnumerator<KeyValuePair<string, long>> GetEnumerator() => _changes.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Only the changes among <paramref name="names"/> (e.g. <see cref="NetCounters.Names.All"/>), unchanged ones as 0.</summary>
    public IReadOnlyDictionary<string, long> Only(IEnumerable<string> names) => names.ToDictionary(n => n, n => this[n]);

    /// <summary>One line per changed counter, sorted by name: "TcpExt.ListenOverflows  +4".</summary>
    public override string ToString()
    {
        var sb = new StringBuilder($"{Count} counters changed in {Elapsed.TotalMilliseconds:0} ms\n");
        foreach (var (name, d) in _changes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sb.Append(CultureInfo.InvariantCulture, $"{name,-40} {(d > 0 ? "+" : "")}{d}\n");
        return sb.ToString();
    }
}

/// <summary>Watches the counters from its creation: <see cref="Changes"/> is the delta so far, frozen once disposed.</summary>
public sealed class CounterWatch : IDisposable
{
    readonly int? _pid;
    CounterDelta? _final;

    internal CounterWatch(int? pid) { _pid = pid; Start = NetCounters.Read(pid); }

    /// <summary>The counters when watching began.</summary>
    public CounterSnapshot Start { get; }

    /// <summary>What changed since watching began (read now; frozen at Dispose).</summary>
    public CounterDelta Changes => _final ?? Start.Diff(NetCounters.Read(_pid));

    /// <summary>Freezes <see cref="Changes"/>. Idempotent.</summary>
    public void Dispose() => _final ??= Start.Diff(NetCounters.Read(_pid));
}
