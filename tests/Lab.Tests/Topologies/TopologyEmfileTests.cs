using Lab.Interop;
using Lab.Sockets;
using Lab.Tests.Sockets;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Topologies;

/// <summary>The EMFILE policies, with the process's RLIMIT_NOFILE lowered and every descriptor used up: runs alone.</summary>
[Collection(nameof(ProcessWide))]
public class TopologyEmfileTests
{
    /// <summary>Lowers RLIMIT_NOFILE and fills every free descriptor but <paramref name="spare"/>; the filler and the limit go back on Dispose.</summary>
    sealed unsafe class OutOfDescriptors : IDisposable
    {
        rlimit _saved;
        readonly List<Fd> _fillers = new();

        public OutOfDescriptors(int spare)
        {
            // Descriptors of earlier tests' undisposed handles close when their finalizers run, which can be in the
            // middle of this test: then more than `spare` are free and a topology rightly sees no shortage (seen once
            // in a busy suite run: "paused, retried, paused again" never came). Finalize them before filling.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            rlimit saved;
            Assert.Equal(0, sys_resource.getrlimit(sys_resource.RLIMIT_NOFILE, &saved));
            _saved = saved;
            int highest = Directory.GetFiles("/proc/self/fd").Select(f => int.TryParse(Path.GetFileName(f), out var n) ? n : 0).Max();
            var lowered = new rlimit { rlim_cur = (ulong)highest + 32, rlim_max = saved.rlim_max };
            Assert.Equal(0, sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &lowered));
            Fill();
            // Descriptors other threads held for a moment while the fill ran (the runtime starting a thread opens three)
            // are free again a moment later: 10 were free instead of 8 after 150 ms. Take those too, then leave `spare`.
            Window.Of(TimeSpan.FromMilliseconds(100), "descriptors other threads held during the fill close again");
            Fill();
            for (int i = 0; i < spare; i++) Release();
        }

        void Fill()
        {
            for (int i = 0; i < 10_000; i++)
            {
                int fd = Tmds.Linux.LibC.eventfd(0, sys_epoll.EFD_CLOEXEC);
                if (fd < 0) break;
                _fillers.Add(new Fd(fd));
            }
        }

        public void Release()
        {
            _fillers[^1].Dispose();
            _fillers.RemoveAt(_fillers.Count - 1);
        }

        public void Dispose()
        {
            foreach (var f in _fillers) f.Dispose();
            var saved = _saved;
            Assert.Equal(0, sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &saved));
        }
    }

    [Fact]
    public void ReserveFdClosesWhatItCannotServeAndCarriesOn()
    {
        using var t = Started(o => new SingleThreadLoop(o), new TopologyOptions { EmfilePolicy = EmfilePolicy.ReserveFd });
        using var before = new TestClient(t.LocalEndPoint);
        Assert.Equal(200, before.Get().Status);
        TestClient refused;
        using (new OutOfDescriptors(spare: 1)) // one descriptor: the client's socket; the server has only its reserve
        {
            refused = new TestClient(t.LocalEndPoint);
            Assert.True(refused.SeesClose(), "accepted with the reserve descriptor and closed at once");
            Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.AcceptEmfile) >= 1));
            Assert.Equal(200, before.Get().Status); // the connection it had is still served
        }
        refused.Dispose();
        Assert.Equal(1, t.Events.Of(TopologyEventKind.AcceptEmfile)[0].Value);
        using var after = new TestClient(t.LocalEndPoint); // the reserve was reopened and accepting goes on
        Assert.Equal(200, after.Get().Status);
        Assert.Empty(t.Failures);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(0)]
    public void ReserveFdRefusesWhileTheRuntimesHeadroomIsStillFree(int headroom)
    {
        using var t = Started(o => new SingleThreadLoop(o), new TopologyOptions { EmfilePolicy = EmfilePolicy.ReserveFd, FdHeadroom = headroom });
        using var before = new TestClient(t.LocalEndPoint);
        Assert.Equal(200, before.Get().Status);
        using (new OutOfDescriptors(spare: 8)) // 8 free: fewer than the default headroom of 16
        {
            LimitSeenOnNextAccept(t); // then it counts its descriptors again, the limit having changed
            using var client = new TestClient(t.LocalEndPoint);
            if (headroom == 0)
            {
                Assert.Equal(200, client.Get().Status); // no headroom: it serves until accept4 itself fails
                return;
            }
            Assert.True(client.SeesClose(), "refused although accept4 would have succeeded");
            Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.AcceptEmfile) >= 1));
            Assert.True(FreeDescriptors() >= 4, $"{FreeDescriptors()} free"); // left for the runtime
            Assert.Equal(200, before.Get().Status); // the connection it had is still served
        }
        LimitSeenOnNextAccept(t);
        using var after = new TestClient(t.LocalEndPoint); // descriptors back: accepting goes on
        Assert.Equal(200, after.Get().Status);
        Assert.Empty(t.Failures);
    }

    /// <summary>The topology re-reads RLIMIT_NOFILE at most every 100 ms, on an accept: wait until its next accept will.</summary>
    static void LimitSeenOnNextAccept(Topology t) =>
        Assert.True(Eventually.Holds(() => t.Fds.LimitDueForRead), "the topology's descriptor budget never became due to re-read the limit");

    static unsafe long FreeDescriptors()
    {
        rlimit r;
        Assert.Equal(0, sys_resource.getrlimit(sys_resource.RLIMIT_NOFILE, &r));
        return (long)r.rlim_cur - (Directory.GetFiles("/proc/self/fd").Length - 1);
    }

    [Fact]
    public void PauseLeavesTheConnectionQueuedUntilDescriptorsFree()
    {
        using var t = Started(o => new DispatcherWorkers(o), new TopologyOptions { EmfilePolicy = EmfilePolicy.Pause, EmfilePause = TimeSpan.FromMilliseconds(50) });
        TestClient waiting;
        // 8 free: within the runtime's headroom, so the topology pauses while this test host can still start threads.
        // With 1 free (accept4's own EMFILE) the host itself failed in CI: OutOfMemoryException in this test's thread.
        using (new OutOfDescriptors(spare: 8))
        {
            LimitSeenOnNextAccept(t);
            Assert.True(FreeDescriptors() < 16, $"{FreeDescriptors()} descriptors free, not 8: something closed descriptors after the fill");
            waiting = new TestClient(t.LocalEndPoint);
            waiting.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.AcceptEmfile) >= 2), "paused, retried, paused again");
            Assert.Equal(1, t.AcceptQueues()[0].Length);
        }
        using (waiting)
        {
            var (status, _, body) = waiting.ReadResponse();
            Assert.Equal(200, status);
            Assert.Equal(TestClient.OkBody, body);
        }
        Assert.Empty(t.Failures);
    }
}
