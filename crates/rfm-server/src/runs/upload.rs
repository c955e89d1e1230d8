//! The upload form: the file streamed to disk, the options bounded as they are read.

use super::*;

/// Upload extensions accepted, and the name the upload is stored under.
pub(super) fn stored_name(client_name: &str) -> Result<String, ApiError> {
    let lower = client_name.to_ascii_lowercase();
    let ext = [
        ".csv.gz", ".tsv.gz", ".txt.gz", ".csv", ".tsv", ".txt", ".xlsx", ".parquet",
    ]
    .into_iter()
    .find(|e| lower.ends_with(e))
    .ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{client_name}` is not a file this service reads: upload a .csv (or .csv.gz), \
             .xlsx or .parquet file"
        ))
    })?;
    Ok(format!("input{ext}"))
}

/// Refuses a form field by its name alone, before its value is read: `file` and the run's
/// options are the only fields.
pub(super) fn check_field_name(name: &str) -> Result<(), ApiError> {
    match name {
        "file" => Ok(()),
        _ => options::check_name(name).map_err(ApiError::BadRequest),
    }
}

/// The uploaded file (client's name, where it was streamed to, size) and the options.
pub(super) type Form = (
    Option<(String, tempfile::TempPath, u64)>,
    Map<String, Value>,
);

/// Form fields read at most (the file, and each option once, with room to spare): each
/// option may come once and each is at most 4 KB, so the options take 40 KB at most.
pub(super) const MAX_FIELDS: usize = 32;

/// Reads the upload form: the file streams to a temporary file beside the runs, never whole
/// into memory; a field is refused at its header when its name is not one the form takes,
/// and the number of fields and the bytes of the options are bounded as they are read.
pub(super) async fn read_form(s: &Shared, mut form: Multipart) -> Result<Form, ApiError> {
    let limit_mb = s.settings.server.max_upload_mb;
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit_mb)
        } else {
            ApiError::BadRequest(format!(
                "the upload form could not be read: {}",
                e.body_text()
            ))
        }
    };
    let mut file = None;
    let (mut opts, mut fields) = (Map::new(), 0usize);
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or("").to_string();
        check_field_name(&name)?;
        fields += 1;
        if fields > MAX_FIELDS || (name != "file" && opts.contains_key(&name)) {
            return Err(ApiError::BadRequest(format!(
                "the form has more than {MAX_FIELDS} fields or a field twice (`{name}`); send the \
                 file and each option once"
            )));
        }
        if name != "file" {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_OPTION_VALUE {
                    return Err(ApiError::BadRequest(format!(
                        "the option `{name}` is longer than {MAX_OPTION_VALUE} bytes; send a shorter value"
                    )));
                }
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::BadRequest(format!("the option `{name}` is not UTF-8 text"))
            })?;
            opts.insert(name, Value::String(value));
            continue;
        }
        let client_name = field.file_name().unwrap_or("").to_string();
        if client_name.len() > MAX_FILE_NAME {
            return Err(ApiError::BadRequest(format!(
                "the file name `{}` has {} bytes, over {MAX_FILE_NAME}; rename the file",
                rfm_core::bounded::value(&client_name, rfm_core::bounded::MAX_VALUE),
                client_name.len()
            )));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(s.data_dir.join("runs"))?
            .into_temp_path();
        let mut out = tokio::fs::File::create(&tmp).await?;
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            size += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        if !client_name.is_empty() || size > 0 {
            file = Some((client_name, tmp, size)); // else an empty file input
        }
    }
    Ok((file, opts))
}
