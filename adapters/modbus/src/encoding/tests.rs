use std::collections::BTreeMap;

use iotmc_adapter::{ErrorKind, LinkError, Value, ValueType};

use super::{Codec, internal_parameter};
use crate::profile::{Encoding, ModbusSection, Order, Point, TableName};

fn section() -> ModbusSection {
    toml::from_str("").unwrap()
}

fn point(table: TableName, encoding: Option<Encoding>) -> Point {
    Point {
        table,
        address: 0,
        encoding,
        count: None,
        byte_order: None,
        word_order: None,
        scale: None,
        offset: None,
        mask: None,
        map: BTreeMap::new(),
    }
}

fn holding(encoding: Encoding) -> Point {
    point(TableName::Holding, Some(encoding))
}

fn ordered(encoding: Encoding, byte_order: Order, word_order: Order) -> Codec {
    let mut p = holding(encoding);
    p.byte_order = Some(byte_order);
    p.word_order = Some(word_order);
    Codec::new(&section(), &p)
}

fn float() -> iotmc_adapter::profile::Parameter {
    internal_parameter("voltage", ValueType::Float)
}

fn int() -> iotmc_adapter::profile::Parameter {
    internal_parameter("count", ValueType::Int)
}

use Order::{Big, Little};

#[test]
fn f32_should_decode_and_encode_in_every_byte_and_word_order() {
    // 230.0 as IEEE 754 single is 0x4366_0000.
    let cases = [
        (Big, Big, [0x4366, 0x0000]),
        (Big, Little, [0x0000, 0x4366]),
        (Little, Big, [0x6643, 0x0000]),
        (Little, Little, [0x0000, 0x6643]),
    ];
    for (bytes, words, registers) in cases {
        let codec = ordered(Encoding::F32, bytes, words);
        assert_eq!(
            codec.decode_registers(&float(), &registers),
            Ok(Value::Float(230.0)),
            "{bytes:?}/{words:?}"
        );
        assert_eq!(
            codec.encode_registers(&float(), &Value::Float(230.0), None),
            Ok(registers.to_vec()),
            "{bytes:?}/{words:?}"
        );
    }
}

#[test]
fn integers_should_decode_known_vectors() {
    let cases: [(Encoding, Order, Order, &[u16], i64); 9] = [
        (Encoding::U16, Big, Big, &[0xFFFF], 65535),
        (Encoding::I16, Big, Big, &[0xFFFE], -2),
        (Encoding::I16, Little, Big, &[0xFEFF], -2),
        (Encoding::U32, Big, Big, &[0x0001, 0x0002], 0x0001_0002),
        (Encoding::U32, Big, Little, &[0x0002, 0x0001], 0x0001_0002),
        (Encoding::I32, Big, Big, &[0xFFFF, 0xFFFF], -1),
        (Encoding::U64, Big, Big, &[0, 0, 0x0001, 0x0000], 65536),
        (
            Encoding::I64,
            Big,
            Little,
            &[0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF],
            -2,
        ),
        (
            Encoding::I64,
            Little,
            Big,
            &[0x00FF, 0, 0, 0],
            i64::from_be_bytes([0xFF, 0, 0, 0, 0, 0, 0, 0]),
        ),
    ];
    for (encoding, bytes, words, registers, expected) in cases {
        let codec = ordered(encoding, bytes, words);
        assert_eq!(
            codec.decode_registers(&int(), registers),
            Ok(Value::Int(expected)),
            "{encoding:?} {bytes:?}/{words:?} {registers:x?}"
        );
        assert_eq!(
            codec.encode_registers(&int(), &Value::Int(expected), None),
            Ok(registers.to_vec()),
            "{encoding:?} {bytes:?}/{words:?}"
        );
    }
}

#[test]
fn f64_should_round_trip_in_little_word_order() {
    // 1.5 as IEEE 754 double is 0x3FF8_0000_0000_0000.
    let codec = ordered(Encoding::F64, Big, Little);
    assert_eq!(
        codec.encode_registers(&float(), &Value::Float(1.5), None),
        Ok(vec![0, 0, 0, 0x3FF8])
    );
    assert_eq!(
        codec.decode_registers(&float(), &[0, 0, 0, 0x3FF8]),
        Ok(Value::Float(1.5))
    );
}

#[test]
fn u64_above_i64_should_be_malformed_for_an_int_parameter() {
    let codec = ordered(Encoding::U64, Big, Big);
    let err = codec
        .decode_registers(&int(), &[0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.to_string().contains("18446744073709551615"), "{err}");
}

#[test]
fn scale_should_give_clean_decimals_both_ways() {
    let mut p = holding(Encoding::U16);
    p.scale = Some(0.1);
    let codec = Codec::new(&section(), &p);
    assert_eq!(
        codec.decode_registers(&float(), &[2305]),
        Ok(Value::Float(230.5))
    );
    assert_eq!(
        codec.encode_registers(&float(), &Value::Float(21.5), None),
        Ok(vec![215])
    );
}

#[test]
fn offset_should_be_added_after_scale() {
    let mut p = holding(Encoding::I16);
    p.scale = Some(0.5);
    p.offset = Some(-40.0);
    let codec = Codec::new(&section(), &p);
    assert_eq!(
        codec.decode_registers(&float(), &[100]),
        Ok(Value::Float(10.0))
    );
    assert_eq!(
        codec.encode_registers(&float(), &Value::Float(10.0), None),
        Ok(vec![100])
    );
}

#[test]
fn value_between_steps_should_be_out_of_range_saying_the_step_and_bounds() {
    let mut p = holding(Encoding::U16);
    p.scale = Some(0.1);
    let codec = Codec::new(&section(), &p);
    let err = codec
        .encode_registers(&float(), &Value::Float(21.55), None)
        .unwrap_err();
    assert_eq!(
        err,
        LinkError::OutOfRange {
            name: "voltage".into(),
            value: "21.55".into(),
            expected: "a multiple of 0.1 between 0 and 6553.5".into(),
        }
    );
}

#[test]
fn value_beyond_the_encoding_should_be_out_of_range() {
    let codec = Codec::new(&section(), &holding(Encoding::U16));
    let err = codec
        .encode_registers(&int(), &Value::Int(70000), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
    assert!(
        err.to_string()
            .contains("expected a whole number between 0 and 65535"),
        "{err}"
    );
    let err = codec
        .encode_registers(&int(), &Value::Int(-1), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
}

#[test]
fn int_parameter_with_fractional_device_value_should_be_malformed() {
    let mut p = holding(Encoding::U16);
    p.scale = Some(0.1);
    let codec = Codec::new(&section(), &p);
    assert_eq!(codec.decode_registers(&int(), &[20]), Ok(Value::Int(2)));
    let err = codec.decode_registers(&int(), &[25]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.to_string().contains("not a whole number"), "{err}");
}

#[test]
fn nan_and_infinity_should_be_malformed() {
    let codec = ordered(Encoding::F32, Big, Big);
    for registers in [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]] {
        let err = codec.decode_registers(&float(), &registers).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed, "{registers:x?}");
    }
}

#[test]
fn wrong_number_of_words_should_be_malformed_not_a_panic() {
    for encoding in [
        Encoding::U16,
        Encoding::I32,
        Encoding::F32,
        Encoding::F64,
        Encoding::U64,
        Encoding::String,
    ] {
        let codec = Codec::new(&section(), &holding(encoding));
        for words in [&[][..], &[1, 2, 3, 4, 5][..]] {
            let err = codec.decode_registers(&int(), words).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Malformed, "{encoding:?} {words:?}");
        }
    }
    let coil = Codec::new(&section(), &point(TableName::Coil, None));
    let flag = internal_parameter("flag", ValueType::Bool);
    assert_eq!(
        coil.decode_bits(&flag, &[]).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    assert_eq!(
        coil.decode_bits(&flag, &[true, false]).unwrap_err().kind(),
        ErrorKind::Malformed
    );
}

fn text_codec(count: u16) -> Codec {
    let mut p = holding(Encoding::String);
    p.count = Some(count);
    Codec::new(&section(), &p)
}

#[test]
fn string_should_read_two_characters_per_register_trimmed() {
    let serial = internal_parameter("serial", ValueType::String);
    // "AB", "C ", NUL NUL
    let codec = text_codec(3);
    assert_eq!(
        codec.decode_registers(&serial, &[0x4142, 0x4320, 0x0000]),
        Ok(Value::from("ABC"))
    );
    assert_eq!(
        codec.encode_registers(&serial, &Value::from("ABC"), None),
        Ok(vec![0x4142, 0x4300, 0x0000])
    );
}

#[test]
fn string_with_little_byte_order_should_swap_each_pair() {
    let serial = internal_parameter("serial", ValueType::String);
    let mut p = holding(Encoding::String);
    p.count = Some(2);
    p.byte_order = Some(Little);
    p.word_order = Some(Little);
    let codec = Codec::new(&section(), &p);
    // "BA" "DC" swapped per register; word order does not apply to text.
    assert_eq!(
        codec.decode_registers(&serial, &[0x4241, 0x4443]),
        Ok(Value::from("ABCD"))
    );
}

#[test]
fn string_with_non_printable_bytes_should_be_malformed() {
    let serial = internal_parameter("serial", ValueType::String);
    for words in [[0x41FF, 0x0000], [0x4107, 0x0000]] {
        let err = text_codec(2).decode_registers(&serial, &words).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed, "{words:x?}");
    }
}

#[test]
fn string_too_long_or_not_ascii_should_be_refused_on_write() {
    let serial = internal_parameter("serial", ValueType::String);
    for text in ["ABCDE", "Ä"] {
        let err = text_codec(2)
            .encode_registers(&serial, &Value::from(text), None)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfRange, "{text}");
        assert!(err.to_string().contains("at most 4 characters"), "{err}");
    }
}

#[test]
fn mask_should_shift_down_and_write_should_keep_other_bits() {
    let mut p = holding(Encoding::U16);
    p.mask = Some(0x00F0);
    let codec = Codec::new(&section(), &p);
    assert!(codec.needs_read_modify_write());
    assert_eq!(
        codec.decode_registers(&int(), &[0xA5C3]),
        Ok(Value::Int(0xC))
    );
    assert_eq!(
        codec.encode_registers(&int(), &Value::Int(0x7), Some(0xA5C3)),
        Ok(vec![0xA573])
    );
    let err = codec
        .encode_registers(&int(), &Value::Int(16), Some(0))
        .unwrap_err();
    assert!(
        err.to_string().contains("between 0 and 15"),
        "a 4-bit mask holds 0 to 15: {err}"
    );
}

#[test]
fn one_bit_mask_should_be_a_bool() {
    let flag = internal_parameter("alarm", ValueType::Bool);
    let mut p = point(TableName::Holding, None);
    p.mask = Some(0x0100);
    let codec = Codec::new(&section(), &p);
    assert_eq!(
        codec.decode_registers(&flag, &[0x0100]),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        codec.decode_registers(&flag, &[0xFEFF]),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        codec.encode_registers(&flag, &Value::Bool(true), Some(0x0003)),
        Ok(vec![0x0103])
    );
    assert_eq!(
        codec.encode_registers(&flag, &Value::Bool(false), Some(0xFFFF)),
        Ok(vec![0xFEFF])
    );
}

#[test]
fn bool_on_an_unmasked_register_should_be_true_for_anything_but_zero() {
    let flag = internal_parameter("running", ValueType::Bool);
    let codec = Codec::new(&section(), &point(TableName::Input, None));
    assert!(!codec.needs_read_modify_write());
    assert_eq!(codec.decode_registers(&flag, &[0]), Ok(Value::Bool(false)));
    assert_eq!(codec.decode_registers(&flag, &[7]), Ok(Value::Bool(true)));
    assert_eq!(
        codec.encode_registers(&flag, &Value::Bool(true), None),
        Ok(vec![1])
    );
}

#[test]
fn coil_should_decode_and_encode_one_bit() {
    let flag = internal_parameter("relay", ValueType::Bool);
    let codec = Codec::new(&section(), &point(TableName::Coil, None));
    assert_eq!(codec.span(), 1);
    assert_eq!(codec.decode_bits(&flag, &[true]), Ok(Value::Bool(true)));
    assert_eq!(codec.encode_bit(&flag, &Value::Bool(false)), Ok(false));
    assert_eq!(
        codec
            .encode_registers(&flag, &Value::Bool(true), None)
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

fn mode() -> (iotmc_adapter::profile::Parameter, Codec) {
    let mut parameter = internal_parameter("mode", ValueType::Enum);
    parameter.values = vec!["auto".into(), "heat".into()];
    let mut p = holding(Encoding::U16);
    p.map = BTreeMap::from([("auto".to_owned(), 0), ("heat".to_owned(), 3)]);
    (parameter, Codec::new(&section(), &p))
}

#[test]
fn enum_should_map_raw_values_to_members_both_ways() {
    let (parameter, codec) = mode();
    assert_eq!(
        codec.decode_registers(&parameter, &[3]),
        Ok(Value::from("heat"))
    );
    assert_eq!(
        codec.encode_registers(&parameter, &Value::from("auto"), None),
        Ok(vec![0])
    );
}

#[test]
fn enum_raw_value_without_member_should_be_malformed_naming_it() {
    let (parameter, codec) = mode();
    let err = codec.decode_registers(&parameter, &[7]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    let text = err.to_string();
    assert!(
        text.contains("`mode`") && text.contains("raw value 7"),
        "{text}"
    );
    assert!(text.contains("auto = 0, heat = 3"), "{text}");
}

#[test]
fn wrong_value_type_should_be_wrong_type() {
    let codec = Codec::new(&section(), &holding(Encoding::U16));
    let err = codec
        .encode_registers(&int(), &Value::from("ten"), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongType);
}

#[test]
fn f32_write_beyond_its_range_should_be_out_of_range() {
    let codec = ordered(Encoding::F32, Big, Big);
    let err = codec
        .encode_registers(&float(), &Value::Float(1e300), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
}

#[test]
fn section_orders_should_apply_unless_the_point_overrides_them() {
    let mut s = section();
    s.word_order = Little;
    let p = holding(Encoding::U32);
    let codec = Codec::new(&s, &p);
    assert_eq!(
        codec.decode_registers(&int(), &[0x0002, 0x0001]),
        Ok(Value::Int(0x0001_0002))
    );
    let mut p = holding(Encoding::U32);
    p.word_order = Some(Big);
    let codec = Codec::new(&s, &p);
    assert_eq!(
        codec.decode_registers(&int(), &[0x0001, 0x0002]),
        Ok(Value::Int(0x0001_0002))
    );
}

#[test]
fn enum_kept_as_a_float_should_map_whole_raw_values() {
    let (parameter, _) = mode();
    let mut p = holding(Encoding::F32);
    p.map = BTreeMap::from([("auto".to_owned(), 0), ("heat".to_owned(), 3)]);
    let codec = Codec::new(&section(), &p);
    // 3.0 as IEEE 754 single is 0x4040_0000.
    assert_eq!(
        codec.decode_registers(&parameter, &[0x4040, 0x0000]),
        Ok(Value::from("heat"))
    );
    assert_eq!(
        codec.encode_registers(&parameter, &Value::from("heat"), None),
        Ok(vec![0x4040, 0x0000])
    );
    // 2.5 is no raw value of any member.
    let err = codec
        .decode_registers(&parameter, &[0x4020, 0x0000])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
}

#[test]
fn f32_should_read_as_its_shortest_decimal_not_its_widened_binary() {
    let codec = Codec::new(&section(), &holding(Encoding::F32));
    let bits = 0.98f32.to_bits();
    let words = [(bits >> 16) as u16, bits as u16];
    assert_eq!(
        codec.decode_registers(&float(), &words),
        Ok(Value::Float(0.98))
    );
    let bits = 229.9f32.to_bits();
    let words = [(bits >> 16) as u16, bits as u16];
    assert_eq!(
        codec.decode_registers(&float(), &words),
        Ok(Value::Float(229.9))
    );
}
