"""Realistic Vietnamese text for the table tests: Lạng Sơn place names, people's names, land-register phrases.

Picked to cover every letter shape that occurs in the data (ư ơ ă â ê ô đ with all tones, ỵ in Thiện Kỵ, ẳ in
Mạc Văn Đẳng), uppercase accented initials (Ánh, Ủy, Ấp) and old/new tone placement (Thuỵ / Thụy).
"""
from __future__ import annotations

PLACES = [
    "Lạng Sơn", "Đông Kinh", "Lương Văn Tri", "Thất Khê", "Quý Hòa", "Thụy Hùng", "Thuỵ Hùng", "Điềm He",
    "Hữu Lũng", "Mẫu Sơn", "Khuất Xá", "Chi Lăng", "Hoàng Văn Thụ", "Tam Thanh", "Vĩnh Trại", "Mai Pha",
    "Hoàng Đồng", "Quảng Lạc", "Cao Lộc", "Văn Lãng", "Tràng Định", "Bình Gia", "Văn Quan", "Bắc Sơn",
    "Lộc Bình", "Đình Lập", "Na Sầm", "Đồng Đăng", "Xuân Long", "Hồng Phong", "Yên Trạch", "Hòa Lạc",
    "Hữu Kiên", "Bằng Mạc", "Chiến Thắng", "Quang Lang", "Nhân Lý", "Vân Thủy", "Thượng Cường", "Vạn Linh",
    "Y Tịch", "Gia Cát", "Song Giáp", "Tú Xuyên", "Ái Quốc", "Lợi Bác", "Tú Mịch", "Tĩnh Bắc", "Xuân Dương",
    "Bính Xá", "Kiên Mộc", "Nhất Tiến", "Quyết Thắng", "Hữu Liên", "Yên Vượng", "Cai Kinh", "Thiện Kỵ",
    "Đội Cấn", "Ấp Nà Phặc", "thị trấn Đồng Mỏ", "xã Trấn Yên", "phường Tam Thanh", "huyện Tràng Định",
    "tỉnh Lạng Sơn", "núi Phai Vệ", "sông Kỳ Cùng", "suối Ngàn Ngặt",
]
PEOPLE = [
    "Nguyễn Văn An", "Hoàng Thị Thu", "Lường Văn Phủ", "Nông Thị Hường", "Triệu Thị Mỵ", "Hà Văn Quyết",
    "Vi Văn Thắng", "Lộc Thị Yến", "Chu Đức Mạnh", "Dương Thị Ngọc Ánh", "Phùng Thị Nguyệt", "Mạc Văn Đẳng",
    "Tô Thị Xuân", "Bế Văn Đàn", "Ngô Thị Hải Yến", "Trần Quốc Tuấn", "Vũ Đức Thuận", "Lý Thị Hoa",
    "Đinh Công Tráng", "Hứa Văn Hẳn", "Lăng Văn Sửu", "Hoàng Thị Ửng", "Nguyễn Thị Ước", "Lục Văn Ướng",
]
PHRASES = [
    "Đất ở tại nông thôn", "Đất ở tại đô thị", "Đất trồng lúa nước", "Đất trồng cây lâu năm",
    "Đất rừng sản xuất", "Đất rừng phòng hộ", "Đất nuôi trồng thủy sản", "Đất chưa sử dụng",
    "Đất sông, ngòi, kênh, rạch, suối", "Trường", "Người", "Trường Tiểu học Đông Kinh",
    "Giấy chứng nhận quyền sử dụng đất", "Ủy ban nhân dân xã", "Văn phòng đăng ký đất đai",
    "Sở Nông nghiệp và Môi trường", "Giấy phép khai thác khoáng sản", "Mỏ đá vôi làm vật liệu xây dựng",
    "Hành lang bảo vệ nguồn nước", "Cộng hòa xã hội chủ nghĩa Việt Nam", "Độc lập - Tự do - Hạnh phúc",
    "Thửa đất số 125, tờ bản đồ số 7", "đường thẳng", "ngõ hẻm", "cửa khẩu Hữu Nghị", "chợ Kỳ Lừa",
]
CORPUS = PLACES + PEOPLE + PHRASES
