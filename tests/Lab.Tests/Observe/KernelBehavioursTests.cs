using Lab.Observe;

namespace Lab.Tests.Observe;

/// <summary>
/// The version-dependent behaviours the chapters' checks follow. CI runs one kernel, so the branches for older kernels
/// are tested on their decision logic; this kernel's branch is also measured live.
/// </summary>
public class KernelBehavioursTests
{
    [Fact]
    public void OnThisKernelBothQueuesHoldBacklogPlusOne()
    {
        // Linux 6.x here: sk_acceptq_is_full and inet_csk_reqsk_queue_is_full both test "more than the backlog".
        Assert.Equal(1, KernelBehaviours.MeasureQueueExtra(synQueue: false));
        Assert.Equal(1, KernelBehaviours.MeasureQueueExtra(synQueue: true));
    }

    [Fact]
    public void WithLinearTimeoutsTheFirstGapsAreOneSecondThenTheyDouble()
    {
        var gaps = Enumerable.Range(1, 7).Select(i => KernelBehaviours.SynRetransmitGap(i, 4)).ToArray();
        Assert.Equal(new[] { 1.0, 1, 1, 1, 1, 2, 4 }, gaps);
    }

    [Theory]
    [InlineData(null)]   // a kernel before 6.5: no sysctl
    [InlineData(0)]      // a newer kernel with the sysctl at 0
    public void WithoutLinearTimeoutsTheGapsDoubleFromTheStart(int? linear)
    {
        var gaps = Enumerable.Range(1, 5).Select(i => KernelBehaviours.SynRetransmitGap(i, linear)).ToArray();
        Assert.Equal(new[] { 1.0, 2, 4, 8, 16 }, gaps);   // SYNs at 0, 1, 3, 7, 15, 31 s: the notes' schedule
    }

    [Fact]
    public void AnOlderSynQueueIsExplainedNotFailed()
    {
        var current = KernelBehaviours.SynQueueBound(1);
        Assert.Null(current.Newer);
        Assert.Contains("backlog + 1", current.ThisKernel);

        var older = KernelBehaviours.SynQueueBound(0);
        Assert.Contains("holds backlog half-open requests", older.ThisKernel);
        Assert.Contains("backlog + 1", older.Newer);
        Assert.Contains("this kernel", KernelBehaviours.SynQueueClaim(16, 0));
        Assert.Contains("16 half-open", KernelBehaviours.SynQueueClaim(16, 0));
        Assert.Equal("the SYN queue holds backlog + 1 = 17 half-open requests", KernelBehaviours.SynQueueClaim(16, 1));
    }

    [Fact]
    public void MissingSysctlsSayWhatNewerKernelsDo()
    {
        Assert.Contains("6.5", KernelBehaviours.SynSchedule(null).Newer);
        Assert.Contains("does not exist", KernelBehaviours.SynSchedule(null).HowKnown);
        Assert.Null(KernelBehaviours.SynSchedule(4).Newer);
        Assert.Contains("5 times one second apart", KernelBehaviours.SynSchedule(4).ThisKernel);
        Assert.Contains("5.14", KernelBehaviours.MigrateRequests(null).Newer);
        Assert.Contains("resets", KernelBehaviours.MigrateRequests(0).ThisKernel);
        Assert.Contains("moves", KernelBehaviours.MigrateRequests(1).ThisKernel);
    }

    [Fact]
    public void ThisKernelHasTheSysctlsOfCurrentKernels()
    {
        // Debian 12 with Linux 6.x here: both exist (their values are the machine's).
        Assert.NotNull(KernelBehaviours.SynLinearTimeouts);
        Assert.NotNull(KernelBehaviours.MigrateReq);
        Assert.All(KernelBehaviours.All(), b => Assert.False(string.IsNullOrWhiteSpace(b.HowKnown)));
    }
}

public class KernelSysctlNeedTests
{
    [Fact]
    public void ACellNeedingASysctlThisKernelLacksIsSkippedWithWhatThisKernelDoes()
    {
        // The decision for an older kernel, taken here with a sysctl no kernel has.
        var e = Assert.Throws<CellSkippedException>(() => Lab.Hosts.Needs.KernelSysctl("net.ipv4.lab_no_such_sysctl", "9.9", "it does the old thing"));
        Assert.Contains($"This kernel ({File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}) has no net.ipv4.lab_no_such_sysctl: it came in Linux 9.9", e.Reason);
        Assert.Contains("On this kernel it does the old thing.", e.Reason);
        // And this kernel's branch: the sysctl exists, the cell runs.
        Lab.Hosts.Needs.KernelSysctl("net.ipv4.tcp_syn_linear_timeouts", "6.5", "unused");
    }
}
