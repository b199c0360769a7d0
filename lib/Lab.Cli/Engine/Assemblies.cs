using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Scripting;

namespace Lab.Cli.Engine;

/// <summary>
/// Keeps one copy of every assembly in the process. Roslyn's script loader asks the default context first for
/// every assembly a cell needs, so an assembly the host already has (Lab, the Formatting library: all in Lab.Cli's
/// deps.json) binds to the host's copy, with the host's statics. For anything else a cell's <c>#r</c> brings,
/// <see cref="Install"/> adds a default-context resolver that probes the folders of #r'd DLLs, so those load into the
/// default context too (once), instead of one private context per DLL; without it, when the lab drew with Plotly.NET,
/// FSharp.Core beside a #r'd Plotly.NET loaded a second time and charts failed with MissingMethodException.
/// </summary>
static class Assemblies
{
    static readonly ConcurrentDictionary<string, byte> Folders = new(StringComparer.Ordinal);
    static int _installed;

    /// <summary>Folders probed for assemblies the default context cannot find itself.</summary>
    public static IReadOnlyCollection<string> ProbeFolders => Folders.Keys.ToList();

    public static void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 1) return;
        AssemblyLoadContext.Default.Resolving += Resolve;
    }

    /// <summary>Adds the folder of a DLL a cell referenced.</summary>
    public static void AddProbeFolderOf(string dllPath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(dllPath));
        if (dir != null) Folders.TryAdd(dir, 0);
    }

    static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        if (name.Name == null) return null;
        // Already in the default context (loaded by path earlier)? Bind to that copy.
        foreach (var a in context.Assemblies)
            if (string.Equals(a.GetName().Name, name.Name, StringComparison.OrdinalIgnoreCase)) return a;
        foreach (var dir in Folders.Keys)
        {
            var path = Path.Combine(dir, name.Name + ".dll");
            if (File.Exists(path)) return context.LoadFromAssemblyPath(path);
        }
        return null;
    }
}

/// <summary>
/// Resolves <c>#r</c> like Roslyn's script resolver (relative paths against the notebook's folder), and records the
/// folder of each DLL it resolves so that DLL's neighbours load from there (<see cref="Assemblies"/>).
/// </summary>
sealed class NotebookReferenceResolver : MetadataReferenceResolver
{
    readonly ScriptMetadataResolver _inner;
    readonly string _baseDirectory;

    public NotebookReferenceResolver(string baseDirectory)
    {
        _baseDirectory = baseDirectory;
        _inner = ScriptMetadataResolver.Default.WithBaseDirectory(baseDirectory);
    }

    public override ImmutableArray<PortableExecutableReference> ResolveReference(string reference, string? baseFilePath, MetadataReferenceProperties properties)
    {
        if (reference.StartsWith("nuget:", StringComparison.OrdinalIgnoreCase))
            return ImmutableArray<PortableExecutableReference>.Empty; // reported by the engine with a clearer message
        var result = _inner.ResolveReference(reference, baseFilePath, properties);
        foreach (var r in result)
            if (r.FilePath != null) Assemblies.AddProbeFolderOf(r.FilePath);
        return result;
    }

    public override bool ResolveMissingAssemblies => _inner.ResolveMissingAssemblies;

    public override PortableExecutableReference? ResolveMissingAssembly(MetadataReference definition, AssemblyIdentity referenceIdentity)
        => _inner.ResolveMissingAssembly(definition, referenceIdentity);

    public override bool Equals(object? other) => other is NotebookReferenceResolver o && o._baseDirectory == _baseDirectory;
    public override int GetHashCode() => _baseDirectory.GetHashCode();
}
