using Lab.Observe;

namespace Lab.Tests.Observe;

public class NetCountersTests
{
    [Fact]
    public void ConnectAndAcceptShowAsActiveAndPassiveOpens()
    {
        using var listener = TestSockets.Listen(backlog: 8);
        CounterDelta changes;
        using (var watch = NetCounters.Watch())
        {
            for (int i = 0; i < 3; i++)
            {
                var (c, s) = TestSockets.ConnectedPair(listener);
                c.Dispose();
                s.Dispose();
            }
            watch.Dispose();
            changes = watch.Changes;
            Assert.Same(changes, watch.Changes); // frozen once disposed
        }
        Assert.True(changes[NetCounters.Names.ActiveOpens] >= 3, changes.ToString());
        Assert.True(changes[NetCounters.Names.PassiveOpens] >= 3, changes.ToString());
        Assert.Equal(changes["TcpActiveOpens"], changes[NetCounters.Names.ActiveOpens]);
        Assert.Contains("Tcp.ActiveOpens", changes.ToString());

        var during = NetCounters.During(() =>
        {
            var (c, s) = TestSockets.ConnectedPair(listener);
            c.Dispose();
            s.Dispose();
        });
        Assert.True(during[NetCounters.Names.PassiveOpens] >= 1);
    }

    [Fact]
    public void EveryNameInTheProcFilesIsParsed()
    {
        var snapshot = NetCounters.Read();
        int names = 0;
        foreach (var file in new[] { "/proc/net/netstat", "/proc/net/snmp" })
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i += 2)
            {
                var header = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var table = header[0].TrimEnd(':');
                foreach (var n in header.Skip(1)) { Assert.True(snapshot.ContainsKey($"{table}.{n}"), $"{table}.{n}"); names++; }
            }
        }
        if (File.Exists("/proc/net/snmp6"))
            foreach (var line in File.ReadAllLines("/proc/net/snmp6").Where(l => l.Length > 0))
            {
                var n = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[0];
                Assert.True(snapshot.ContainsKey(n), n); // the nstat spelling maps to the dotted one
                names++;
            }
        Assert.Equal(names, snapshot.Count);
        foreach (var name in NetCounters.Names.All) Assert.True(snapshot.ContainsKey(name), name);
        Assert.True(snapshot.ContainsKey("Ip6.InReceives") || !File.Exists("/proc/net/snmp6"));
        Assert.Equal(snapshot["TcpExt.ListenOverflows"], snapshot["TcpExtListenOverflows"]);
        Assert.Throws<KeyNotFoundException>(() => snapshot["TcpExt.NoSuchCounter"]);
    }

    /// <summary>
    /// Every counter nstat prints lies between two lab readings taken just before and just after it (counters only
    /// grow, so this is exact while other tests are busy on the same kernel); names are compared in nstat's spelling.
    /// </summary>
    [Fact]
    public void ValuesAgreeWithNstat()
    {
        var before = NetCounters.Read();
        var nstat = Tool.Nstat();
        var after = NetCounters.Read();
        Assert.True(nstat.Count > 100, $"nstat printed {nstat.Count} counters");
        var lab = before.ByNstatName();
        var labAfter = after.ByNstatName();
        int compared = 0;
        foreach (var (name, value) in nstat)
        {
            if (name.StartsWith("Sctp", StringComparison.Ordinal)) continue; // /proc/net/sctp/snmp: not read by the lab
            Assert.True(lab.ContainsKey(name), $"nstat has {name}, the lab does not");
            if (labAfter[name] < lab[name]) continue; // a gauge (Tcp.CurrEstab) that fell meanwhile
            Assert.InRange(value, lab[name], labAfter[name]);
            compared++;
        }
        Assert.True(compared > 100);
        long failedLab = before[NetCounters.Names.SyncookiesFailed], failedNstat = nstat["TcpExtSyncookiesFailed"];
        Assert.True(failedLab <= failedNstat, $"TcpExt.SyncookiesFailed: the lab read {failedLab}, then nstat {failedNstat}");
    }

    [Fact]
    public void AnotherProcessesNamespaceIsReadThroughProcPid()
    {
        var self = NetCounters.Read(Environment.ProcessId);
        var mine = NetCounters.Read();
        Assert.Equal(mine.Keys.Order(), self.Keys.Order());
        var e = Assert.Throws<ObserveException>(() => NetCounters.Read(int.MaxValue));
        Assert.Contains("/proc/2147483647/net", e.Message);
    }

    [Fact]
    public void NamesConvertBetweenDottedAndNstatSpelling()
    {
        Assert.Equal("TcpExt.ListenOverflows", NetCounters.ToDotted("TcpExtListenOverflows"));
        Assert.Equal("Tcp.ActiveOpens", NetCounters.ToDotted("TcpActiveOpens"));
        Assert.Equal("IcmpMsg.InType3", NetCounters.ToDotted("IcmpMsgInType3"));
        Assert.Equal("Ip6.InReceives", NetCounters.ToDotted("Ip6InReceives"));
        Assert.Equal("TcpExtListenOverflows", NetCounters.ToNstat(NetCounters.Names.ListenOverflows));
    }
}
