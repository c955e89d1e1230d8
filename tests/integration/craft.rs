//! Parquet files written byte by byte, with page headers and dictionaries that say what a
//! test wants them to say: polars' writer only writes true ones. Three columns, for
//! `--columns customer=c,date=d,amount=a` (one row per order): `c`, text, dictionary-encoded
//! (one dictionary page, one page of indices); `d`, a date as text; `a`, a double.

use polars_parquet_format::thrift::protocol::TCompactOutputProtocol;
use polars_parquet_format::{
    ColumnChunk, ColumnMetaData, CompressionCodec, ConvertedType, DataPageHeader,
    DictionaryPageHeader, Encoding, FieldRepetitionType, FileMetaData, PageHeader, PageType,
    RowGroup, SchemaElement, Type,
};

/// What the customer column's headers say, where they lie.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lie {
    /// The dictionary page's `num_values`.
    pub dict_values: Option<i32>,
    /// The data page's `num_values`.
    pub page_values: Option<i32>,
    /// The data page's `uncompressed_page_size`.
    pub inflated: Option<i32>,
    /// The dictionary page's `uncompressed_page_size`.
    pub dict_inflated: Option<i32>,
}

/// The columns `--columns` maps for a crafted file.
pub const COLUMNS: &str = "customer=c,date=d,amount=a";

/// A file of `rows` rows whose customer column repeats `dictionary` round-robin.
pub fn parquet(rows: usize, dictionary: &[Vec<u8>], lie: Lie) -> Vec<u8> {
    let mut file = b"PAR1".to_vec();
    let mut columns = Vec::new();
    let indices = (0..rows)
        .map(|r| (r % dictionary.len()) as u32)
        .collect::<Vec<_>>();
    columns.push(text_chunk(&mut file, "c", dictionary, &indices, lie));
    let dates = [b"2011-01-01 10:00".to_vec(), b"2011-06-01 10:00".to_vec()];
    let days = (0..rows).map(|r| (r % 2) as u32).collect::<Vec<_>>();
    columns.push(text_chunk(&mut file, "d", &dates, &days, Lie::default()));
    let amounts: Vec<u8> = (0..rows)
        .flat_map(|r| (1.5 + (r % 7) as f64).to_le_bytes())
        .collect();
    columns.push(plain_chunk(&mut file, "a", Type::DOUBLE, rows, &amounts));
    let meta = FileMetaData {
        version: 1,
        schema: schema(),
        num_rows: rows as i64,
        row_groups: vec![RowGroup {
            columns,
            total_byte_size: file.len() as i64,
            num_rows: rows as i64,
            sorting_columns: None,
            file_offset: None,
            total_compressed_size: None,
            ordinal: None,
        }],
        key_value_metadata: None,
        created_by: Some("rfm-agent tests".into()),
        column_orders: None,
        encryption_algorithm: None,
        footer_signing_key_metadata: None,
    };
    let mut footer = Vec::new();
    meta.write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut footer))
        .unwrap();
    file.extend(&footer);
    file.extend((footer.len() as u32).to_le_bytes());
    file.extend(b"PAR1");
    file
}

fn schema() -> Vec<SchemaElement> {
    let leaf = |name: &str, type_: Type, text: bool| SchemaElement {
        type_: Some(type_),
        type_length: None,
        repetition_type: Some(FieldRepetitionType::REQUIRED),
        name: name.into(),
        num_children: None,
        converted_type: text.then_some(ConvertedType::UTF8),
        scale: None,
        precision: None,
        field_id: None,
        logical_type: None,
    };
    let mut root = leaf("schema", Type::BOOLEAN, false);
    (root.type_, root.repetition_type, root.num_children) = (None, None, Some(3));
    vec![
        root,
        leaf("c", Type::BYTE_ARRAY, true),
        leaf("d", Type::BYTE_ARRAY, true),
        leaf("a", Type::DOUBLE, false),
    ]
}

/// Writes a page header and its (uncompressed) data; returns the header's length too.
fn page(file: &mut Vec<u8>, header: PageHeader, data: &[u8]) {
    header
        .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut *file))
        .unwrap();
    file.extend(data);
}

fn header(type_: PageType, inflated: i32, compressed: usize) -> PageHeader {
    PageHeader {
        type_,
        uncompressed_page_size: inflated,
        compressed_page_size: compressed as i32,
        crc: None,
        data_page_header: None,
        index_page_header: None,
        dictionary_page_header: None,
        data_page_header_v2: None,
    }
}

fn data_header(values: i32, encoding: Encoding) -> DataPageHeader {
    DataPageHeader {
        num_values: values,
        encoding,
        definition_level_encoding: Encoding::RLE,
        repetition_level_encoding: Encoding::RLE,
        statistics: None,
    }
}

/// A dictionary page of `dictionary` and a page of `indices` into it (bit width 8 or 16,
/// bit-packed as RLE runs of one value each).
fn text_chunk(
    file: &mut Vec<u8>,
    name: &str,
    dictionary: &[Vec<u8>],
    indices: &[u32],
    lie: Lie,
) -> ColumnChunk {
    let start = file.len();
    let dict: Vec<u8> = dictionary
        .iter()
        .flat_map(|v| {
            (v.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(v.iter().copied())
        })
        .collect();
    let mut h = header(
        PageType::DICTIONARY_PAGE,
        lie.dict_inflated.unwrap_or(dict.len() as i32),
        dict.len(),
    );
    h.dictionary_page_header = Some(DictionaryPageHeader {
        num_values: lie.dict_values.unwrap_or(dictionary.len() as i32),
        encoding: Encoding::PLAIN,
        is_sorted: None,
    });
    page(file, h, &dict);
    let data_start = file.len();
    let data = rle_indices(indices);
    let mut h = header(
        PageType::DATA_PAGE,
        lie.inflated.unwrap_or(data.len() as i32),
        data.len(),
    );
    h.data_page_header = Some(data_header(
        lie.page_values.unwrap_or(indices.len() as i32),
        Encoding::RLE_DICTIONARY,
    ));
    page(file, h, &data);
    chunk(
        name,
        Type::BYTE_ARRAY,
        indices.len(),
        start,
        data_start,
        Some(start),
        file.len(),
    )
}

/// Indices as the hybrid RLE encoding: a bit width of 16, then one run per stretch of equal
/// values (header = count << 1, then the value in two bytes).
fn rle_indices(indices: &[u32]) -> Vec<u8> {
    let mut out = vec![16u8];
    let mut i = 0;
    while i < indices.len() {
        let value = indices[i];
        let run = indices[i..].iter().take_while(|v| **v == value).count();
        let mut n = (run as u64) << 1;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                break;
            }
        }
        out.extend((value as u16).to_le_bytes());
        i += run;
    }
    out
}

fn plain_chunk(
    file: &mut Vec<u8>,
    name: &str,
    type_: Type,
    rows: usize,
    data: &[u8],
) -> ColumnChunk {
    let start = file.len();
    let mut h = header(PageType::DATA_PAGE, data.len() as i32, data.len());
    h.data_page_header = Some(data_header(rows as i32, Encoding::PLAIN));
    page(file, h, data);
    chunk(name, type_, rows, start, start, None, file.len())
}

fn chunk(
    name: &str,
    type_: Type,
    values: usize,
    start: usize,
    data_page: usize,
    dictionary: Option<usize>,
    end: usize,
) -> ColumnChunk {
    let size = (end - start) as i64;
    ColumnChunk {
        file_path: None,
        file_offset: start as i64,
        meta_data: Some(ColumnMetaData {
            type_,
            encodings: vec![Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY],
            path_in_schema: vec![name.into()],
            codec: CompressionCodec::UNCOMPRESSED,
            num_values: values as i64,
            total_uncompressed_size: size,
            total_compressed_size: size,
            key_value_metadata: None,
            data_page_offset: data_page as i64,
            index_page_offset: None,
            dictionary_page_offset: dictionary.map(|d| d as i64),
            statistics: None,
            encoding_stats: None,
            bloom_filter_offset: None,
            bloom_filter_length: None,
            size_statistics: None,
        }),
        offset_index_offset: None,
        offset_index_length: None,
        column_index_offset: None,
        column_index_length: None,
        crypto_metadata: None,
        encrypted_column_metadata: None,
    }
}
