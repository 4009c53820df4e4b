using System.ComponentModel.DataAnnotations;
using Gateway.Protocols;
using Gateway.Routing;
using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>The <c>Http</c> section: dashboard, API, metrics, health and WebSocket endpoints.</summary>
public sealed class HttpOptions
{
    public const string Section = "Http";

    [Range(0, 65535, ErrorMessage = "Http:Port must be between 0 and 65535")]
    public int Port { get; set; } = 15672;

    [Required(ErrorMessage = "Http:BindAddress is required")]
    public string BindAddress { get; set; } = "0.0.0.0";
}

/// <summary>The <c>Storage</c> section.</summary>
public sealed class StorageOptions
{
    public const string Section = "Storage";

    [Required(ErrorMessage = "Storage:DataDirectory is required")]
    public string DataDirectory { get; set; } = "./data";

    /// <summary>
    /// <c>durable</c>: a write is acknowledged once LiteDB's log holding it is fsynced (survives
    /// kill -9 and power loss). <c>fast</c>: once it is written to the kernel (survives kill -9,
    /// not a power cut).
    /// </summary>
    [RegularExpression("^(durable|fast)$", ErrorMessage = "Storage:Durability must be durable or fast")]
    public string Durability { get; set; } = "durable";

    /// <summary>Free space to leave on the data directory's file system; below it new messages are refused.</summary>
    [Range(0, 1_048_576, ErrorMessage = "Storage:MinFreeMegabytes must be between 0 and 1048576")]
    public int MinFreeMegabytes { get; set; } = 64;
}

/// <summary>The <c>Memory</c> section.</summary>
public sealed class MemoryOptions
{
    public const string Section = "Memory";

    /// <summary>
    /// Message bytes the gateway may hold in memory for clients that are not taking them
    /// (offline persistent sessions, subscribers left behind); 0 sizes it to a quarter of the
    /// heap limit (64 MB under the shipped build's 256 MB cap).
    /// </summary>
    [Range(0, 1_048_576, ErrorMessage = "Memory:BudgetMegabytes must be between 0 (a quarter of the heap limit) and 1048576")]
    public int BudgetMegabytes { get; set; }

    public long BudgetBytes => BudgetMegabytes == 0 ? MemoryBudget.DefaultLimit : BudgetMegabytes * 1024L * 1024;
}

[OptionsValidator]
internal sealed partial class MemoryOptionsValidator : IValidateOptions<MemoryOptions>
{
}

[OptionsValidator]
internal sealed partial class HttpOptionsValidator : IValidateOptions<HttpOptions>
{
}

[OptionsValidator]
internal sealed partial class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
}

/// <summary>
/// The data directory must exist (it is created) and take writes, checked with the other
/// options so a bad one stops start-up with one line naming the key.
/// </summary>
internal sealed class DataDirectoryValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        if (string.IsNullOrEmpty(options.DataDirectory))
        {
            return ValidateOptionsResult.Success; // the required-field check reports it
        }

        var problem = DataDirectory.CheckWritable(options.DataDirectory);
        return problem is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail("Storage:DataDirectory " + problem);
    }
}

/// <summary>The one check that the data directory exists (it is created) and takes writes.</summary>
internal static class DataDirectory
{
    /// <summary>Null when usable; otherwise what is wrong, naming the directory.</summary>
    public static string? CheckWritable(string path)
    {
        var directory = Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, ".write-test");
            File.WriteAllBytes(probe, [1]);
            File.Delete(probe);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"'{directory}' is not a writable directory: {ex.Message}";
        }
    }
}

/// <summary>Listener addresses must parse; the message names the key.</summary>
internal sealed class BindAddressValidator : IValidateOptions<HttpOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpOptions options) => ProtocolOptions.CheckAddress("Http:BindAddress", options.BindAddress);
}
