using System.Reflection;
using Lab.Cli.Engine;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using Kernel = Microsoft.DotNet.Interactive.Kernel;

namespace Lab.Tests.Engine;

/// <summary>
/// The lab engine against Polyglot Notebooks' C# kernel (the package dotnet-repl runs, here in this process): a cell
/// that compiles in <c>lab run</c> must compile in Polyglot. CI runs only the lab engine, so what it accepts and the
/// kernel does not would go unnoticed until a reader opens the chapter in VS Code.
/// </summary>
[Collection(nameof(EngineCollection))]
public class PolyglotParityTests
{
    /// <summary>One session in each host, made as dotnet-repl and Polyglot make theirs; a cell runs in both.</summary>
    sealed class BothHosts : IAsyncDisposable
    {
        // UseKernelHelpers submits `using static Microsoft.DotNet.Interactive.Kernel;`: display(x), HTML("...").
        public CSharpKernel Kernel { get; } = new CSharpKernel().UseKernelHelpers();
        public EngineHarness Engine { get; } = new();

        /// <summary>Each host's failure message for the cell, or null where it ran.</summary>
        public async Task<(string? Kernel, string? Engine)> Run(string code)
        {
            var k = await Kernel.SendAsync(new SubmitCode(code)).WaitAsync(TimeSpan.FromSeconds(60));
            var e = await Engine.Run(code);
            return (k.Events.OfType<CommandFailed>().Select(f => f.Message ?? "failed").FirstOrDefault(),
                e.Status == CellStatus.Ok ? null : e.ErrorValue ?? e.Status.ToString());
        }

        /// <summary>The chapters' set-up cell: the library's #r.</summary>
        public async Task ReferenceTheLibrary() =>
            Assert.Equal((null, null), await Run($"#r \"{Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug", "Lab.dll")}\""));

        public async ValueTask DisposeAsync()
        {
            Kernel.Dispose();
            await Engine.DisposeAsync();
        }
    }

    [Fact]
    public void DefaultImportsAreTheCSharpKernels()
    {
        using var kernel = new CSharpKernel();
        var options = (ScriptOptions)typeof(CSharpKernel).GetField("_scriptOptions", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(kernel)!;
        Assert.Equal(options.Imports, NotebookEngine.DefaultImports);
    }

    // Namespaces the engine imported for every cell until chapters wrote their own usings.
    public static TheoryData<string, string> NeedAUsing => new()
    {
        { "System.IO", "Path" },
        { "System.IO", "File" },
        { "System.Threading", "Thread" },
        { "System.Threading", "CancellationTokenSource" },
        { "System.Diagnostics", "Stopwatch" },
        { "System.Diagnostics", "Process" },
        { "System.Net", "IPAddress" },
        { "System.Net", "IPEndPoint" },
        { "System.Net.Sockets", "Socket" },
        { "System.Net.Sockets", "SocketError" },
    };

    [Theory]
    [MemberData(nameof(NeedAUsing))]
    public async Task ATypeOutsideTheImportsNeedsAUsingInBothHosts(string ns, string type)
    {
        await using var both = new BothHosts();
        var (kernel, engine) = await both.Run($"typeof({type}).Name");
        Assert.Contains("CS0246", kernel);
        Assert.Contains("CS0246", engine);
        Assert.Equal((null, null), await both.Run($"using {ns};\ntypeof({type}).Name"));
    }

    // Cells as chapters write them, after the set-up cell. Each runs in both hosts or in neither, but for OnlyInTheKernel.
    static readonly string[] Cells =
    {
        // The imports: no using needed in either host.
        "var xs = new List<int> { 3, 1, 2 }.OrderBy(x => x).ToList(); xs.Count",
        "new StringBuilder().Append(TimeSpan.FromMilliseconds(300)).ToString()",
        "await Task.Delay(1); new ArrayList().Count",
        "Console.WriteLine(\"to stdout\");",
        // What Polyglot's kernel helpers give: display(x), its Update(y), HTML("...").
        "var view = display(\"first\"); view.Update(\"second\");",
        "Action<object> update = display(\"live\").Update; update(1);",
        "display(1, \"text/plain\");",
        "HTML(\"<b>bold</b>\")",
        // The library's checks, as check cells use them (the capability cell only compiled: it may skip at run time).
        "Lab.Check.That(true, \"a claim that holds\")",
        "Lab.Check.Equal(5, 2 + 3, \"backlog + 1\")",
        "Action needs = () => Lab.Hosts.Needs.Capabilities(Lab.Hosts.Capability.NetAdmin); needs.Method.Name.Length > 0",
        // Outside the imports: the namespace spelled out, or a using (which these cells lack).
        "System.IO.Path.GetFileName(\"/tmp/x\")",
        "typeof(Path).Name",
        "typeof(Thread).Name",
        "typeof(Stopwatch).Name",
        "typeof(IPEndPoint).Name",
        "typeof(Socket).Name",
        // Kernel helpers the engine does not give: such a cell fails in lab run, where CI sees it.
        "CSS(\"b { color: red }\");",
        "Javascript(\"void 0\");",
        // What the engine's own assembly (its globals' type) references: out of a cell's reach.
        "typeof(Lab.Cli.Engine.LabGlobals).Name",
        "typeof(Spectre.Console.AnsiConsole).Name",
        "typeof(Markdig.Markdown).Name",
        "typeof(NetMQ.NetMQSocket).Name",
        "typeof(System.CommandLine.RootCommand).Name",
    };

    static readonly string[] OnlyInTheKernel = { "CSS(\"b { color: red }\");", "Javascript(\"void 0\");" };

    [Fact]
    public async Task ChapterCellsRunInBothHostsOrInNeither()
    {
        await using var both = new BothHosts();
        await both.ReferenceTheLibrary();
        var onlyKernel = new List<string>();
        var onlyEngine = new List<string>();
        foreach (var cell in Cells)
        {
            var (kernel, engine) = await both.Run(cell);
            if (engine == null && kernel != null) onlyEngine.Add($"`{cell}`; the kernel says: {kernel}");
            else if (engine != null && kernel == null) onlyKernel.Add(cell);
        }
        Assert.Empty(onlyEngine);
        Assert.Equal(OnlyInTheKernel, onlyKernel);
    }

    [Fact]
    public void EveryGlobalTheEngineGivesIsAKernelHelperWithTheSameParameters()
    {
        foreach (var m in typeof(LabGlobals).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
        {
            var parameters = m.GetParameters().Select(p => p.ParameterType).ToArray();
            Assert.True(typeof(Kernel).GetMethod(m.Name, BindingFlags.Public | BindingFlags.Static, parameters) != null,
                $"LabGlobals.{m.Name}({string.Join(", ", parameters.Select(p => p.Name))}) has no static Kernel.{m.Name} with those parameters");
        }
        var displayed = typeof(Kernel).GetMethod("display")!.ReturnType;
        foreach (var m in typeof(DisplayHandle).GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
        {
            if (m is MethodInfo { IsSpecialName: true } || m.Name == nameof(ToString)) continue;
            Assert.True(m is MethodInfo method
                    ? displayed.GetMethod(m.Name, method.GetParameters().Select(p => p.ParameterType).ToArray()) != null
                    : displayed.GetMember(m.Name, BindingFlags.Public | BindingFlags.Instance).Length > 0,
                $"DisplayHandle.{m.Name} has no counterpart on the kernel's {displayed.Name}");
        }
    }

    [Fact]
    public async Task TheEngineLetsACellNameNoAssemblyTheKernelDoesNot()
    {
        // What a cell can name with its namespace spelled out (System.Net.Http.HttpClient): the assemblies whose global
        // namespaces the compilation's merges. Those include what Roslyn resolves because a reference references it (the
        // kernel's own assemblies bring most of the framework); the engine's globals assembly, and what only it
        // references, come in under an alias, out of a cell's reach.
        await using var both = new BothHosts();
        await both.ReferenceTheLibrary();
        static HashSet<string> Nameable(Compilation c) => c.GlobalNamespace.ConstituentNamespaces
            .Select(n => n.ContainingAssembly).Where(a => a is { IsInteractive: false })
            .Select(a => a.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var inKernel = Nameable(both.Kernel.ScriptState.Script.GetCompilation());
        var inEngine = Nameable(both.Engine.Engine.LastCompilation());

        Assert.Contains("System.Net.Sockets", inEngine);
        Assert.Contains("Lab", inEngine);
        Assert.Empty(inEngine.Except(inKernel, StringComparer.OrdinalIgnoreCase).Order());
    }
}
