using System.Text.RegularExpressions;
using Lab.Cli.Notebooks;

namespace Lab.Tests.Engine;

/// <summary>
/// <c>lab run --repeat N</c>: a notebook run N times in one session, and the process's fds and threads after the
/// last run compared with those after the first.
/// </summary>
[Collection(nameof(EngineCollection))]
public class RepeatRunTests
{
    /// <summary><c>lab run NOTEBOOK --repeat N</c> on a fixture of the "repeat" folder: what it printed, and the executed copy (null if none).</summary>
    static async Task<(LabProcess.Result R, Notebook? Executed)> RunRepeated(string notebook, int repeat)
    {
        var root = LabProcess.FixtureTree("repeat");
        try
        {
            var r = await LabProcess.Run(root, null, "run", Path.Combine(root, "nb", notebook), "--repeat", repeat.ToString(), "--out", Path.Combine(root, "out"));
            var executed = Path.Combine(root, "out", notebook);
            return (r, File.Exists(executed) ? Notebook.Load(executed, keepOutputs: true) : null);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task ACleanNotebookRunThreeTimesHoldsItsCounts()
    {
        var (r, nb) = await RunRepeated("01-clean.ipynb", 3);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("01-clean.ipynb  run 3/3  cell 3/3", r.Stdout);
        Assert.Contains("(3 runs in one session)", r.Stdout);
        Assert.Matches(@"01-clean\.ipynb: after run 1: \d+ fds, \d+ threads \(\d+ pool\); after run 3: \d+ fds, \d+ threads \(\d+ pool\) \(held\)", r.Stdout);
        // The executed copy holds the last run's outputs, with execution counts going on as a kernel's do.
        var code = nb!.Cells.Where(c => c.IsCode).ToList();
        Assert.Equal(new int?[] { 7, 8, 9 }, code.Select(c => c.ExecutionCount));
        Assert.Equal("True", Notebook.ReadText(code[2].Outputs.Single()["data"]!["text/plain"]));
    }

    [Fact]
    public async Task ANotebookThatLeavesAServerRunningEachTimeFailsNamingWhatGrew()
    {
        var (r, _) = await RunRepeated("02-leaky.ipynb", 3);
        Assert.True(r.ExitCode == 1, r.ToString());
        // Runs 2 and 3 each left a SingleThreadLoop: its thread, listening socket, epoll, eventfd and spare fd.
        Assert.Contains("lab run: failed: 02-leaky.ipynb: ran 3 times in one session and left more behind each time", r.Stderr);
        Assert.Contains("lab-topo loop ×2", r.Stderr);
        Assert.Contains("socket ×2", r.Stderr);
        Assert.Contains("anon_inode:[eventpoll] ×2", r.Stderr);
        Assert.Contains("/dev/null ×2", r.Stderr);
        Assert.Contains("8 more fds", r.Stderr);
    }

    [Fact]
    public async Task ACellThatKeepsItsServerRunsTwiceInARowFromTheSecondRunAndHolds()
    {
        var (r, nb) = await RunRepeated("03-kept.ipynb", 2);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("(held)", r.Stdout);
        // Run 1: cells 1-4 once (counts 1-4). Run 2: the Keep.One cell twice in a row (6, 7), the others once.
        Assert.Equal(new int?[] { 5, 7, 8, 9 }, nb!.Cells.Where(c => c.IsCode).Select(c => c.ExecutionCount));
        Assert.Equal(2, Regex.Matches(r.Stdout, @"run 2/2  cell 2/4").Count);
        Assert.Single(Regex.Matches(r.Stdout, @"run 2/2  cell 2/4 .* ok \(re-run: a set-up cell run again alone\)"));
    }

    [Fact]
    public async Task ASetUpCellThatKeepsOnlyPartOfWhatItStartsFailsWhenReRunAlone()
    {
        var (r, _) = await RunRepeated("04-half-kept.ipynb", 2);
        // The clean-up cell stops the second run's servers; the first of the two set-up runs' unkept server is left.
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("04-half-kept.ipynb: ran 2 times in one session and left more behind each time", r.Stderr);
        Assert.Contains("lab-topo loop ×1", r.Stderr);
    }

    [Fact]
    public async Task ARepeatOutsideItsRangeIsRefused()
    {
        var r = await LabProcess.Run(Path.GetTempPath(), null, "run", "nowhere.ipynb", "--repeat", "0");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--repeat 0: give 1 to 100", r.Stderr);
    }

    [Fact]
    public void CountsComparePoolThreadsNeverAndSocketsByKind()
    {
        var first = new ProcessCounts(["socket:[10]", "/dev/null", "anon_inode:[eventpoll]"], ["Lab.Cli", ".NET TP Worker", ".NET TP Worker", "lab-topo loop"]);
        // Other sockets (new inodes), fewer pool threads, one more tiered-compilation thread: the same as far as leaks go.
        var same = new ProcessCounts(["socket:[99]", "/dev/null", "anon_inode:[eventpoll]"], ["Lab.Cli", ".NET Tiered Com", "lab-topo loop"]);
        var check = new RepeatCheck(10, first, same, TimeSpan.Zero);
        Assert.True(check.Held, check.ToString());
        Assert.Empty(check.NewFds);

        // Two fds more is within the slack; three is not, and each new one is named by its target.
        var two = first with { Fds = [.. first.Fds, "pipe:[5]", "pipe:[6]"] };
        Assert.True(new RepeatCheck(2, first, two, TimeSpan.Zero).Held);
        var three = first with { Fds = [.. two.Fds, "socket:[7]"] };
        var grew = new RepeatCheck(2, first, three, TimeSpan.Zero);
        Assert.False(grew.Held);
        Assert.Equal(["pipe ×2", "socket ×1"], grew.NewFds);
        Assert.Contains("3 more fds (pipe ×2, socket ×1)", grew.ToString());

        // An assembly first loaded after run 1 (two fds on a .dll that had none) is a load, not a leak; the same .dll
        // gaining fds it already had after run 1 is a leak.
        const string dll = "/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/System.IO.Compression.dll";
        var loaded = first with { Fds = [.. first.Fds, dll, dll, "/x/Other.dll", "/x/Other.dll"] };
        var load = new RepeatCheck(5, first, loaded, TimeSpan.Zero);
        Assert.True(load.Held, load.ToString());
        Assert.Contains("assemblies loaded after run 1: System.IO.Compression.dll, Other.dll", load.ToString());
        var mapped = first with { Fds = [.. first.Fds, dll] };
        var remapped = mapped with { Fds = [.. mapped.Fds, dll, dll, dll] };
        var leak = new RepeatCheck(3, mapped, remapped, TimeSpan.Zero);
        Assert.False(leak.Held);
        Assert.Contains($"3 more fds ({dll} ×3)", leak.ToString());

        // One more non-pool thread fails, named.
        var thread = first with { Threads = [.. first.Threads, "lab cell: 03-ac"] };
        var t = new RepeatCheck(2, first, thread, TimeSpan.Zero);
        Assert.False(t.Held);
        Assert.Equal(["lab cell: 03-ac ×1"], t.NewThreads);
    }
}
