using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Gateway.Storage;

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
