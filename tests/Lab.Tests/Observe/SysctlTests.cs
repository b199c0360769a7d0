using Lab.Observe;

namespace Lab.Tests.Observe;

/// <summary>Tests that change sysctls: run alone, restore in finally.</summary>
[CollectionDefinition(nameof(SysctlCollection), DisableParallelization = true)]
public sealed class SysctlCollection;

[Collection(nameof(SysctlCollection))]
public class SysctlTests
{
    // Harmless to change for a moment on a shared machine: how often a listener resends a SYN-ACK.
    const string Harmless = "net.ipv4.tcp_synack_retries";

    static string Normalize(string s) => string.Join(' ', s.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void ReadsEqualSysctlN()
    {
        foreach (var k in Sysctl.Known)
        {
            if (!Sysctl.Exists(k.Name)) continue; // e.g. tcp_migrate_req before 5.14
            Assert.Equal(Normalize(Tool.Run("sysctl", "-n", k.Name)), Normalize(Sysctl.Read(k.Name)));
        }
        Assert.Equal(long.Parse(Tool.Run("sysctl", "-n", "net.core.somaxconn").Trim()), Sysctl.ReadInt("net.core.somaxconn"));
        var range = Sysctl.ReadInts("net.ipv4.ip_local_port_range");
        Assert.Equal(Normalize(Tool.Run("sysctl", "-n", "net.ipv4.ip_local_port_range")), $"{range[0]} {range[1]}");
    }

    [Fact]
    public void ExistsSaysWhatSysctlSays()
    {
        // sysctl(8) is the reference: it prints a value for a sysctl this kernel has and fails for one it lacks.
        Assert.True(Sysctl.Exists("net.core.somaxconn"));
        Assert.True(Sysctl.Exists("net.ipv4.tcp_syncookies"));
        Assert.False(Sysctl.Exists("net.ipv4.tcp_no_such_sysctl"));
        Assert.Throws<InvalidOperationException>(() => Tool.Run("sysctl", "-n", "net.ipv4.tcp_no_such_sysctl"));
        Assert.Throws<SysctlException>(() => Sysctl.Exists("../../etc/passwd"));
    }

    [Fact]
    public void SetChangesTheValueAndDisposeRestoresIt()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "changing a sysctl needs root");
        var old = Sysctl.Read(Harmless);
        var next = old == "3" ? "4" : "3";
        try
        {
            int trackedBefore = LabResources.Count().GetValueOrDefault("SysctlScope");
            var scope = Sysctl.Set(Harmless, long.Parse(next));
            Assert.Equal(next, Sysctl.Read(Harmless));
            Assert.Equal(next, Tool.Run("sysctl", "-n", Harmless).Trim());
            Assert.Equal(trackedBefore + 1, LabResources.Count().GetValueOrDefault("SysctlScope"));
            scope.Dispose();
            Assert.Equal(old, Tool.Run("sysctl", "-n", Harmless).Trim());
            Assert.True(scope.Restored);
            Assert.Equal(trackedBefore, LabResources.Count().GetValueOrDefault("SysctlScope"));
            // A second Dispose does nothing, even if the value changed again meanwhile.
            using (Sysctl.Set(Harmless, next))
            {
                scope.Dispose();
                Assert.Equal(next, Sysctl.Read(Harmless));
            }
            Assert.Equal(old, Sysctl.Read(Harmless));
        }
        finally
        {
            if (Sysctl.Read(Harmless) != old) Sysctl.Write(Harmless, old);
        }
    }

    [Fact]
    public void ACancelledCellRestoresItsSysctl()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "changing a sysctl needs root");
        var old = Sysctl.Read(Harmless);
        try
        {
            using (var cell = LabResources.BeginScope())
            {
                Sysctl.Set(Harmless, old == "3" ? "4" : "3");
                Assert.Empty(cell.DisposeStarted());
            }
            Assert.Equal(old, Tool.Run("sysctl", "-n", Harmless).Trim());
        }
        finally
        {
            if (Sysctl.Read(Harmless) != old) Sysctl.Write(Harmless, old);
        }
    }

    [Fact]
    public void AnOutOfRangeValueIsRefusedWithTheRangeAndNothingChanges()
    {
        var old = Sysctl.Read("net.ipv4.tcp_syncookies");
        var e = Assert.Throws<SysctlException>(() => Sysctl.Set("net.ipv4.tcp_syncookies", 7));
        Assert.Equal(SysctlFailure.InvalidValue, e.Failure);
        Assert.Contains("net.ipv4.tcp_syncookies", e.Message);
        Assert.Contains("'7'", e.Message);
        Assert.Contains("0..2", e.Message);
        Assert.Equal(old, Tool.Run("sysctl", "-n", "net.ipv4.tcp_syncookies").Trim());

        var e2 = Assert.Throws<SysctlException>(() => Sysctl.Set("net.ipv4.tcp_abort_on_overflow", 2));
        Assert.Contains("0..1", e2.Message);
        Assert.Throws<SysctlException>(() => Sysctl.Set("net.ipv4.ip_local_port_range", "60000 1000"));
    }

    [Fact]
    public void AValueTheKernelRejectsIsReportedWithItsErrno()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "the kernel checks the value only for a writer allowed to write");
        const string name = "net.ipv4.tcp_fin_timeout"; // not in Known: the kernel's own parser rejects the text
        var old = Sysctl.Read(name);
        try
        {
            var e = Assert.Throws<SysctlException>(() => Sysctl.Set(name, "not-a-number"));
            Assert.Equal(SysctlFailure.InvalidValue, e.Failure);
            Assert.Equal("EINVAL", e.ErrnoName);
            Assert.Contains("not-a-number", e.Message);
            Assert.Equal(old, Tool.Run("sysctl", "-n", name).Trim());
        }
        finally
        {
            if (Sysctl.Read(name) != old) Sysctl.Write(name, old);
        }
    }

    [Fact]
    public void AnUnknownNameSaysSo()
    {
        var e = Assert.Throws<SysctlException>(() => Sysctl.Read("net.ipv4.tcp_no_such_thing"));
        Assert.Equal(SysctlFailure.UnknownName, e.Failure);
        Assert.Contains("no such sysctl on this kernel", e.Message);
        Assert.Contains("net.ipv4.tcp_no_such_thing", e.Message);
        var e2 = Assert.Throws<SysctlException>(() => Sysctl.Set("net.ipv4.tcp_no_such_thing", 1));
        Assert.Equal(SysctlFailure.UnknownName, e2.Failure);
        Assert.Throws<SysctlException>(() => Sysctl.Read("net..core"));
    }

    [Fact]
    public void AReadOnlySysctlIsRefusedAndNamed()
    {
        // fs.dentry-state is mode 0444: even root may not write it (proc_sys_permission checks the mode bits).
        var e = Assert.Throws<SysctlException>(() => Sysctl.Set("fs.dentry-state", "1"));
        Assert.Equal(SysctlFailure.ReadOnly, e.Failure);
        Assert.Contains("fs.dentry-state is read-only", e.Message);
    }

    [Fact]
    public void KnownSysctlsHaveMeanings()
    {
        foreach (var name in new[] { "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies",
                     "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_syn_retries",
                     "net.ipv4.ip_local_port_range", "net.ipv4.tcp_migrate_req" })
            Assert.False(string.IsNullOrWhiteSpace(Assert.Single(Sysctl.Known, k => k.Name == name).Meaning));
    }
}
