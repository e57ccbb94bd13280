"""Word lists for synthetic Lạng Sơn records: people, villages, organisations. Vietnamese letters and ASCII only
(TCVN3 and VNI can encode nothing else)."""
from __future__ import annotations

# Family names: Tày / Nùng names first (Hoàng, Nông, Lương, Vi, Lộc, ...), then the common Kinh names.
SURNAMES = (
    "Hoàng", "Nông", "Lương", "Vi", "Lộc", "Triệu", "Đàm", "Lăng", "Chu", "Mông", "Hà", "Nguyễn", "Hoàng",
    "Nông", "Lương", "Hoàng", "Nguyễn", "Lý", "Đinh", "Vy", "Hứa", "Dương", "Lành", "Hoàng", "Tô", "Mã",
    "La", "Lâm", "Bế", "Ninh", "Trần", "Lê", "Phạm", "Vũ", "Đỗ", "Bùi", "Linh", "Ma", "Sầm", "Tạ",
)
SURNAME_WEIGHTS = None  # uniform over the tuple (repeats give Hoàng, Nông, Lương, Nguyễn more weight)

MALE_MIDDLE = ("Văn", "Văn", "Văn", "Đức", "Minh", "Thanh", "Quang", "Hữu", "Ngọc", "Xuân", "Công", "Đình")
FEMALE_MIDDLE = ("Thị", "Thị", "Thị", "Thị", "Ngọc", "Thanh", "Thu", "Minh", "Hồng", "Kim")
MALE_GIVEN = (
    "An", "Bình", "Cường", "Dũng", "Đức", "Hải", "Hùng", "Khánh", "Lâm", "Long", "Mạnh", "Nam", "Phong",
    "Quân", "Sơn", "Thắng", "Thành", "Tiến", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Páo", "Slình", "Pắn",
    "Khiêm", "Dền", "Lìn", "Sáng", "Thụ", "Quý", "Thiện", "Chiến", "Lợi", "Hưng", "Kiên", "Hiếu",
)
FEMALE_GIVEN = (
    "Anh", "Bích", "Chi", "Dung", "Duyên", "Giang", "Hà", "Hằng", "Hoa", "Hồng", "Huyền", "Lan", "Liên",
    "Linh", "Mai", "Nga", "Ngân", "Nhung", "Phương", "Quyên", "Tâm", "Thảo", "Thơm", "Thủy", "Trang", "Vân",
    "Xuân", "Yến", "Slao", "Dìn", "Mỷ", "Pằn", "Lụa", "Hương", "Thu",
)

# Tày / Nùng place-name parts for villages (thôn, bản).
VILLAGE_PREFIX = ("Nà", "Bản", "Khuổi", "Pác", "Khau", "Lũng", "Pò", "Nà", "Bản", "Nà", "Còn", "Khòn", "Phai",
                  "Tà", "Co", "Pá", "Kéo", "Đon")
VILLAGE_SUFFIX = (
    "Pài", "Sla", "Cáp", "Mò", "Hin", "Lầy", "Rị", "Dầu", "Khiêng", "Toòng", "Chu", "Quang", "Slưởng", "Héc",
    "Nhừ", "Vài", "Phai", "Lạn", "Mạ", "Pàn", "Tẳng", "Cằm", "Lùng", "Noọc", "Luông", "Tao", "Nưa", "Piệt",
    "Thẳm", "Chang", "Lếch", "Khao", "Mòn", "Tốc", "Sàn", "Slam",
)
URBAN_UNITS = ("Khối", "Tổ dân phố", "Khu")  # + number, in wards and townships

ORG_COMPANY_KIND = ("Công ty TNHH", "Công ty cổ phần", "Công ty TNHH MTV", "Hợp tác xã")
ORG_COMPANY_NAME = (
    "Xây dựng Kỳ Lừa", "Vật liệu xây dựng Đồng Đăng", "Thương mại Tân Thanh", "Khoáng sản Hữu Lũng",
    "Nông lâm nghiệp Mẫu Sơn", "Dịch vụ Hoàng Đồng", "Đầu tư Xứ Lạng", "Gạch ngói Lộc Bình",
    "Lâm nghiệp Đình Lập", "Vận tải Chi Lăng", "Xuất nhập khẩu Na Sầm", "Chế biến nông sản Bắc Sơn",
    "Đá xây dựng Bình Gia", "Thủy sản Bản Lải", "Cơ khí Văn Quan", "Du lịch Mẫu Sơn",
)
ORG_PUBLIC = (  # (template, user type, land use)
    ("UBND {xa}", "UBQ", None),
    ("Trường THCS {n}", "TSN", "DGD"),
    ("Trường Tiểu học {n}", "TSN", "DGD"),
    ("Trường Mầm non {n}", "TSN", "DGD"),
    ("Trạm Y tế {xa}", "TSN", "DYT"),
    ("Nhà văn hóa thôn {v}", "UBQ", "DVH"),
    ("Công an {xa}", "TCN", "CAN"),
    ("Ban Quản lý rừng phòng hộ {n}", "TSN", "RPH"),
)

# Water-licence holders and mining companies (organisations: public names).
WATER_COMPANIES = (
    "Công ty cổ phần Cấp thoát nước Lạng Sơn", "Công ty TNHH MTV Khai thác thủy lợi Lạng Sơn",
    "Công ty cổ phần Thủy điện Kỳ Cùng", "Công ty TNHH Nước sạch Đồng Đăng", "Công ty cổ phần Bia Xứ Lạng",
    "Trung tâm Nước sinh hoạt và Vệ sinh môi trường nông thôn", "Công ty TNHH Chế biến gỗ Hữu Lũng",
    "Công ty cổ phần Thủy điện Bắc Khê", "Công ty TNHH Nông sản Chi Lăng", "Bệnh viện Đa khoa tỉnh Lạng Sơn",
)
MINING_COMPANIES = (
    "Công ty cổ phần Đá Hữu Lũng", "Công ty TNHH Khoáng sản Chi Lăng", "Công ty cổ phần Xi măng Đồng Bành",
    "Công ty TNHH MTV Vật liệu xây dựng Cao Lộc", "Công ty cổ phần Khai thác đá Bắc Sơn",
    "Công ty TNHH Gạch Tuynel Lộc Bình", "Công ty cổ phần Vật liệu Văn Quan", "Hợp tác xã Cát sỏi Kỳ Cùng",
    "Công ty TNHH Xây dựng Thương Giang", "Công ty cổ phần Khoáng sản Xứ Lạng",
    "Công ty TNHH Đá vôi Tân Thành", "Công ty cổ phần Gạch ngói Hợp Thành", "Công ty TNHH San lấp Đồng Mỏ",
    "Công ty cổ phần Đầu tư Mỏ Lạng Sơn",
)
COAL_COMPANY = "Công ty Than Na Dương - VVMI"

GCN_SERIES = ("AĐ", "BA", "BĐ", "BK", "BX", "CĐ", "CH", "CS", "CT", "CY", "DA", "DĐ", "DK")
